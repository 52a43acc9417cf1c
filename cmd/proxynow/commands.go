package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/proxynow/proxynow/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "Usage: proxynow version") }
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	fmt.Fprintf(stdout, "proxynow %s\n", versionString())
	return exitOK
}

func usageCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitConfig
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: proxynow validate FILE|DIR...\n\nChecks configuration files without binding any port. Files given together form one configuration.")
	}
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitConfig
	}
	cfg, err := loadConfig(fs.Args()...)
	if err != nil {
		printDiagnostics(stderr, err)
		return exitConfig
	}
	ws := append(slices.Clone(cfg.Warnings), routeWarnings(cfg)...)
	ws.SortByPos()
	for _, w := range ws {
		fmt.Fprintln(stderr, w.Error())
	}
	fmt.Fprintf(stdout, "configuration OK: %s\n", strings.Join(cfg.Files, ", "))
	return exitOK
}

// buildMiddlewares constructs every middleware as `run` would, so that
// validate reports what only its constructor can check (and kinds not
// implemented yet) at the block's position.
func buildMiddlewares(cfg *config.Config) error {
	var ds config.Diagnostics
	for i := range cfg.Middlewares {
		m := &cfg.Middlewares[i]
		if _, err := middleware.Build(m, middleware.Env{}); err != nil {
			ds = append(ds, config.Diagnostic{Pos: m.Pos, Message: err.Error()})
		}
	}
	if len(ds) > 0 {
		return ds
	}
	return nil
}

// routeWarnings lists, per entrypoint, the http_routes that can never
// match because another route takes all their requests, each at the
// route's block.
func routeWarnings(cfg *config.Config) config.Diagnostics {
	var out config.Diagnostics
	for _, ep := range cfg.Entrypoints {
		var routes []*config.HTTPRoute
		for i := range cfg.HTTPRoutes {
			if slices.Contains(cfg.HTTPRoutes[i].Entrypoints, ep.Name) {
				routes = append(routes, &cfg.HTTPRoutes[i])
			}
		}
		if len(routes) == 0 {
			continue
		}
		ws, err := l7.RouteWarnings(ep.Name, routes)
		if err != nil {
			out = append(out, config.Diagnostic{Severity: config.SeverityWarning,
				Message: fmt.Sprintf("entrypoint %q: %v", ep.Name, err), Err: err})
		}
		out = append(out, ws...)
	}
	return out
}

func printDiagnostics(w io.Writer, err error) {
	var ds config.Diagnostics
	if errors.As(err, &ds) {
		for _, d := range ds {
			fmt.Fprintln(w, d.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdRun(args []string, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files stringList
	fs.Var(&files, "config", "configuration file or directory of *.hcl files; repeatable (default proxynow.hcl)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: proxynow run [-config FILE]...\n\nServes until SIGINT or SIGTERM, then drains open connections within global.grace_period.\nSIGHUP reloads the configuration files (an invalid configuration changes nothing)\nand reopens the access log file; SIGUSR1 only reopens it (log rotation).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxynow run: unexpected argument %q (use -config)\n", fs.Arg(0))
		return exitConfig
	}
	if len(files) == 0 {
		files = stringList{"proxynow.hcl"}
	}
	cfg, err := loadConfig(files...)
	if err != nil {
		printDiagnostics(stderr, err)
		return exitConfig
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.Log, level)
	acmeLog.Store(log)

	if stop == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, runSignals()...)
		defer signal.Stop(ch)
		stop = ch
	}

	defer server.StartGCTuner()()
	srv, err := server.NewWithOptions(cfg, server.Options{Logger: log, Version: versionString()})
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitRuntime
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "error", err)
		return exitRuntime
	}
	format := cfg.Log.Format
	rl, err := server.NewReloader(srv, server.ReloaderOptions{
		Files:      files,
		Load:       loadConfig,
		Applied:    func(c *config.Config) { applyLog(log, level, format, c.Log) },
		Logger:     log,
		Registerer: srv.Registry(),
	})
	if err != nil {
		log.Error("cannot start", "error", err)
		_ = srv.Close()
		return exitRuntime
	}
	srv.SetReload(func(ctx context.Context) (config.Diagnostics, error) { return rl.Reload(ctx, "POST /reload") })
	log.Info("started", "version", versionString(), "files", cfg.Files)

	for sig := range stop {
		if sig == syscall.SIGHUP {
			_, _ = rl.Reload(context.Background(), "SIGHUP") // logged by the reloader
			continue
		}
		if reopenSignal != nil && sig == reopenSignal {
			reopenAccessLog(srv)
			continue
		}
		break
	}
	rl.Close()
	cfg = srv.Config()
	log.Info("shutting down", "grace_period", cfg.Global.GracePeriod)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Global.GracePeriod)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err = <-done:
	case <-stop: // a second signal: stop now
		log.Warn("second signal: closing all connections now")
		cancel()
		err = <-done
	}
	if err != nil {
		log.Warn("grace period over: open connections were closed", "error", err)
	}
	log.Info("stopped")
	return exitOK
}

// runSignals are the signals run handles: stop, reload and, where it
// exists, reopen.
func runSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
	if reopenSignal != nil {
		sigs = append(sigs, reopenSignal)
	}
	return sigs
}

// reopenTimeout bounds how long the signal loop waits for the access log's
// writer: only a sink stuck in a write makes it wait, and a stop signal
// waits behind it.
const reopenTimeout = 5 * time.Second

// reopenAccessLog is reopenSignal's handler. Its error is logged and
// counted by the server, and the log keeps its old file.
func reopenAccessLog(srv *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), reopenTimeout)
	defer cancel()
	_ = srv.ReopenAccessLog(ctx, "SIGUSR1") // the only reopenSignal
}

// loadConfig is config.Load plus the checks only the middleware
// constructors make: what run (and a reload) accepts.
func loadConfig(files ...string) (*config.Config, error) {
	cfg, err := config.Load(files...)
	if err == nil {
		err = buildMiddlewares(cfg)
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyLog makes a reloaded log block take effect: the level at once; a
// new format needs a restart (the handler writing the log is not swapped),
// which is said once per reload that asks for it.
func applyLog(log *slog.Logger, level *slog.LevelVar, format string, c config.Log) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err == nil && l != level.Level() {
		level.Set(l)
		log.Info("log level changed", "level", c.Level)
	}
	if c.Format != format {
		log.Warn("log.format changes take effect on restart", "format", format, "requested", c.Format)
	}
}

func newLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		l = slog.LevelInfo
	}
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
