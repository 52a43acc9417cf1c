package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxynow/proxynow/config"
)

// LoadFunc loads and validates the configuration files; on failure the
// error is (or wraps) config.Diagnostics.
type LoadFunc func(files ...string) (*config.Config, error)

// ReloaderOptions configure a Reloader.
type ReloaderOptions struct {
	// Files are the configuration files and directories, as given to run.
	Files []string
	// Load is config.Load plus whatever the binary checks before running
	// a configuration; default config.Load.
	Load LoadFunc
	// Registerer gets the reload metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Debounce is how long the file watcher waits after the last change
	// before reloading; default 250ms.
	Debounce time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Applied, when set, is called with each configuration a reload
	// switched to (the binary applies the log level).
	Applied func(*config.Config)
}

// Reloader reloads a Server from its configuration files: on SIGHUP, on
// POST /reload, and (with global { watch = true }) when a file changes.
// Reloads are serialised; each is logged with what changed, or with every
// diagnostic of a configuration that was rejected.
type Reloader struct {
	srv  *Server
	opts ReloaderOptions
	log  *slog.Logger

	mu      sync.Mutex // one reload at a time; guards the fields below
	watcher *watcher
	stopped []*watcher // closed, their goroutines maybe still ending
	closed  bool

	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// Result names of proxynow_config_reloads_total.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// NewReloader makes the Reloader of srv, which must have been started with
// the configuration loaded from opts.Files.
func NewReloader(srv *Server, opts ReloaderOptions) (*Reloader, error) {
	if opts.Load == nil {
		opts.Load = config.Load
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reloader{srv: srv, opts: opts, log: opts.Logger}
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proxynow_config_reloads_total",
		Help: "Configuration reloads by result (success, failure).",
	}, []string{"result"})
	r.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "proxynow_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load (the start counts as one).",
	})
	r.reloads.WithLabelValues(ResultSuccess)
	r.reloads.WithLabelValues(ResultFailure)
	r.lastSuccess.Set(float64(opts.Now().UnixNano()) / 1e9)
	if reg := opts.Registerer; reg != nil {
		for _, c := range []prometheus.Collector{r.reloads, r.lastSuccess} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	if err := r.syncWatch(srv.Config()); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload loads the files and switches the server to them. An invalid
// configuration changes nothing: its diagnostics are logged (each with
// file:line:col) and returned, with a non-nil error. An error without
// diagnostics is one the compile or bind step met (a port in use), and
// changes nothing either.
func (r *Reloader) Reload(ctx context.Context, trigger string) (config.Diagnostics, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.closed {
		return nil, ErrNotRunning
	}
	start := r.opts.Now()
	defer relaxGC()() // parsing a large configuration makes garbage too
	cfg, err := r.opts.Load(r.opts.Files...)
	if err != nil {
		r.reloads.WithLabelValues(ResultFailure).Inc()
		var ds config.Diagnostics
		if !errors.As(err, &ds) {
			ds = config.Diagnostics{{Severity: config.SeverityError, Message: err.Error(), Err: err}}
		}
		r.log.Error("configuration reload rejected: the running configuration is unchanged",
			"trigger", trigger, "errors", len(ds))
		for _, d := range ds {
			r.log.Error("configuration error", "trigger", trigger, "diagnostic", d.Error())
		}
		return ds, err
	}
	ch, err := r.srv.Reload(cfg) // logs cfg's warnings
	if err != nil {
		r.reloads.WithLabelValues(ResultFailure).Inc()
		r.log.Error("configuration reload failed: the running configuration is unchanged", "trigger", trigger, "error", err)
		return nil, err
	}
	r.reloads.WithLabelValues(ResultSuccess).Inc()
	now := r.opts.Now()
	r.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	attrs := append([]any{"trigger", trigger, "files", cfg.Files, "duration", now.Sub(start)}, ch.LogAttrs()...)
	r.log.Info("configuration reloaded", attrs...)
	if err := r.syncWatch(cfg); err != nil {
		r.log.Error("file watch", "error", err)
	}
	if r.opts.Applied != nil {
		r.opts.Applied(cfg)
	}
	return nil, nil
}

// syncWatch starts, updates or stops the file watcher to match cfg.
// r.mu must be held (or r not yet shared).
func (r *Reloader) syncWatch(cfg *config.Config) error {
	if !cfg.Global.Watch {
		if r.watcher != nil {
			// This may run on the watcher's own goroutine (the change that
			// turned watching off): close does not wait for it; Close does.
			r.watcher.close()
			r.stopped = append(r.stopped, r.watcher)
			r.watcher = nil
			r.log.Info("file watch stopped")
		}
		return nil
	}
	files := watchedFiles(r.opts.Files, cfg)
	if r.watcher == nil {
		w, err := newWatcher(r.opts.Debounce, r.log, func() {
			_, _ = r.Reload(context.Background(), "file change")
		})
		if err != nil {
			return err
		}
		r.watcher = w
		r.log.Info("watching configuration files", "files", files)
	}
	r.watcher.set(files)
	return nil
}

// Close stops the file watcher and waits for a reload it started; later
// reloads return ErrNotRunning.
func (r *Reloader) Close() {
	r.mu.Lock()
	r.closed = true
	ws := r.stopped
	if r.watcher != nil {
		ws = append(ws, r.watcher)
	}
	r.watcher, r.stopped = nil, nil
	r.mu.Unlock()
	for _, w := range ws {
		w.close()
		w.wait()
	}
}

// watchedFiles are the configuration paths and the certificate and key
// files the configuration names.
func watchedFiles(paths []string, cfg *config.Config) []string {
	out := append([]string(nil), paths...)
	for _, c := range cfg.TLS.Certificates {
		out = append(out, c.CertFile, c.KeyFile)
	}
	return out
}
