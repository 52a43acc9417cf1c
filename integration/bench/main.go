//go:build linux

// Command bench runs proxynow side by side with nginx, HAProxy, Caddy (and the
// backend reached directly) on loopback, scenario by scenario, and prints a
// Markdown table of throughput, latency, CPU per unit of work and peak RSS,
// with ratios against each peer. See issue 9 and README "Benchmarks".
//
//	go run ./integration/bench                      # every scenario, every installed peer
//	go run ./integration/bench -short               # ~1 s per scenario, proxynow only (smoke)
//	go run ./integration/bench -scenarios tls-handshake -targets proxynow,nginx -pprof /tmp/prof
//	go run ./integration/bench -scenarios http1-keepalive,http1-close,h2-tls
//	go run ./integration/bench -scenarios quic-pass -targets proxynow,proxynow-udp,direct
//	go run ./integration/bench -scenarios h2-tls,h2-static  # the HTTP/2 server's share of h2-tls
//
// proxynow-udp is proxynow with a plain udp_route, for quic-pass only: the
// baseline QUIC passthrough is compared with.
//
// Every target gets one core's worth: GOMAXPROCS=1 for proxynow and Caddy,
// nginx worker_processes 1, HAProxy nbthread 1; the HTTP backend is a
// separate GOMAXPROCS=1 process. HTTP load comes from wrk and h2load when
// installed (Debian: wrk, nghttp2-client), from Go clients otherwise. Targets of a scenario run in
// alternation (A B C A B C ...) for -rounds rounds of -duration each after
// a warm-up that is not measured; the table shows the median and the
// min–max spread over rounds.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	maybeServeBackend() // the HTTP backend is this executable re-run
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	duration, warmup time.Duration
	rounds           int
	scenarios        []*scenario
	targets          []string
	short            bool
	jsonPath         string
	pprofDir         string
	proxynowBin      string
	keep             bool
	openLoop         bool
	openRate         float64
	opts             options
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "length of one measured round")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up per target and scenario")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds per target and scenario")
	scen := fs.String("scenarios", scenarioNames(), "comma-separated scenarios")
	targets := fs.String("targets", "proxynow,proxynow-udp,nginx,haproxy,caddy,direct", "comma-separated targets")
	fs.BoolVar(&c.short, "short", false, "smoke mode: every scenario ~1 s against proxynow alone")
	fs.StringVar(&c.jsonPath, "json", "", "write raw results as JSON to this file")
	fs.StringVar(&c.pprofDir, "pprof", "", "after the comparison, CPU-profile proxynow under each scenario into this directory")
	fs.StringVar(&c.proxynowBin, "proxynow", "", "use this proxynow binary instead of building ./cmd/proxynow")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp directory (configs and logs)")
	fs.BoolVar(&c.openLoop, "open-loop", true, "measure latency at a fixed rate of half the slowest target's peak (where the scenario has it)")
	fs.Float64Var(&c.openRate, "open-rate", 0, "with -open-loop: this rate (per second) instead of half the slowest target's peak")
	fs.IntVar(&c.opts.conns, "conns", 4, "TCP bulk: parallel connections")
	fs.IntVar(&c.opts.flows, "flows", 8, "UDP: client flows")
	fs.IntVar(&c.opts.window, "window", 16, "UDP: datagrams in flight per flow")
	fs.IntVar(&c.opts.workers, "workers", 8, "TLS: concurrent clients")
	fs.IntVar(&c.opts.idleConns, "idle-conns", 10000, "idle-conns: keep-alive connections per target")
	fs.BoolVar(&c.opts.goLoaders, "go-loaders", false, "HTTP: load with the harness's Go clients instead of wrk and h2load")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.short {
		c.duration, c.warmup, c.rounds = time.Second, 200*time.Millisecond, 1
		*targets = "proxynow"
		c.opts.goLoaders = true // no outside tool in the smoke run
		c.opts.idleConns = min(c.opts.idleConns, 200)
	}
	if c.openRate < 0 || c.openRate > 1e6 {
		return nil, errors.New("-open-rate must be 0..1000000")
	}
	if c.rounds < 1 || c.rounds > 100 || c.duration <= 0 || c.duration > 10*time.Minute {
		return nil, errors.New("-rounds must be 1..100 and -duration in (0, 10m]")
	}
	o := c.opts
	if o.conns < 1 || o.flows < 1 || o.window < 1 || o.workers < 1 || o.conns > 1024 || o.flows > 1024 || o.window > 1024 || o.workers > 1024 {
		return nil, errors.New("-conns, -flows, -window, -workers must be 1..1024")
	}
	if o.idleConns < 1 || o.idleConns > 100000 {
		return nil, errors.New("-idle-conns must be 1..100000")
	}
	for _, name := range splitList(*scen) {
		s, err := scenarioByName(name)
		if err != nil {
			return nil, err
		}
		c.scenarios = append(c.scenarios, s)
	}
	for _, name := range splitList(*targets) {
		if _, err := targetByName(name); err != nil {
			return nil, err
		}
		c.targets = append(c.targets, name)
	}
	if len(c.scenarios) == 0 || len(c.targets) == 0 {
		return nil, errors.New("no scenario or no target selected")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "bench:", err)
		}
		return 2
	}
	rep, err := compare(c, stderr)
	if rep != nil {
		rep.markdown(stdout)
		if c.jsonPath != "" {
			if jerr := rep.writeJSON(c.jsonPath); jerr != nil {
				fmt.Fprintln(stderr, "bench:", jerr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// compare builds proxynow, runs every scenario and returns the report; an
// error means the harness itself failed (a target failing is recorded in
// the report and, in -short mode, is an error too).
func compare(c *config, log io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "proxynow-bench-")
	if err != nil {
		return nil, err
	}
	if c.keep {
		fmt.Fprintln(log, "bench: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{dir: dir, proxynow: c.proxynowBin}
	if e.proxynow == "" {
		if e.proxynow, err = buildProxynow(dir, ""); err != nil {
			return nil, err
		}
	}
	if e.cert, err = writeCert(dir); err != nil {
		return nil, err
	}
	for _, sc := range c.scenarios {
		if sc.once && sc.name == "idle-conns" {
			// The targets inherit the limit: raise it before they start.
			if err := raiseNoFile(uint64(c.opts.idleConns) + 1024); err != nil {
				return nil, err
			}
		}
	}
	rep := newReport(c)
	var live []target
	for _, name := range c.targets {
		t, _ := targetByName(name)
		if err := t.check(); err != nil {
			fmt.Fprintf(log, "bench: skipping %s: %v\n", name, err)
			rep.Skipped[name] = err.Error()
			continue
		}
		live = append(live, t)
	}
	var failed []string
	for _, sc := range c.scenarios {
		sr := runScenario(c, e, sc, live, log)
		rep.Scenarios = append(rep.Scenarios, sr)
		for _, tr := range sr.Targets {
			if tr.Error != "" {
				failed = append(failed, sc.name+"/"+tr.Target+": "+tr.Error)
			}
			for _, f := range tr.Failures {
				failed = append(failed, sc.name+"/"+tr.Target+": "+f)
			}
		}
	}
	rep.Machine["loadavg_end"] = loadavg()
	if c.pprofDir != "" {
		if err := profileProxynow(c, e, log); err != nil {
			failed = append(failed, "pprof: "+err.Error())
		}
	}
	if len(failed) > 0 && c.short {
		return rep, fmt.Errorf("failures:\n  %s", strings.Join(failed, "\n  "))
	}
	for _, f := range failed {
		fmt.Fprintln(log, "bench: failed:", f)
	}
	return rep, nil
}

// moduleRoot is the directory holding proxynow's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside proxynow's module")
	}
	return filepath.Dir(gomod), nil
}

// buildProxynow runs go build ./cmd/proxynow into dir, with an -overlay
// file when overlay is set (the profiling build). The flags match the
// integration tests' build so that `make test` compiles proxynow once.
func buildProxynow(dir, overlay string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "proxynow")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		bin += "-pprof"
		args = []string{"build", "-overlay", overlay, "-o", bin}
	}
	cmd := exec.Command("go", append(args, "./cmd/proxynow")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/proxynow: %w\n%s", err, out)
	}
	return bin, nil
}

// liveTarget is one started target within a scenario.
type liveTarget struct {
	t    target
	p    *proc // nil for direct
	addr string
	res  *targetResult
}

// exited reports whether the target's process has died (never for direct).
func (l *liveTarget) exited() (bool, error) {
	if l.p == nil {
		return false, nil
	}
	return l.p.exited()
}

func (l *liveTarget) pid() int {
	if l.p == nil {
		return 0
	}
	return l.p.pid()
}

func runScenario(c *config, e *env, sc *scenario, targets []target, log io.Writer) *scenarioResult {
	sr := &scenarioResult{Name: sc.name, Title: sc.title, Unit: sc.unit, CPUUnit: sc.cpuUnit, PerCPU: sc.perCPU, sc: sc}
	if sc.loader != nil {
		sr.Loader = sc.loader(c.opts)
	}
	b, err := sc.newBackend()
	if err != nil {
		sr.Error = err.Error()
		return sr
	}
	defer b.close()
	var lives []*liveTarget
	defer func() {
		for _, l := range lives {
			if l.p != nil {
				l.p.stop()
			}
		}
	}()
	for _, t := range targets {
		if !t.supports(sc.kind) {
			continue
		}
		tr := &targetResult{Target: t.name()}
		sr.Targets = append(sr.Targets, tr)
		l := &liveTarget{t: t, res: tr, addr: b.addr()}
		if t.name() != directName {
			port, err := freePort()
			if err != nil {
				tr.Error = err.Error()
				continue
			}
			l.addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		tdir := filepath.Join(e.dir, sc.name, t.name())
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			tr.Error = err.Error()
			continue
		}
		p, err := t.start(e, tdir, route{Kind: sc.kind, Listen: l.addr, Backend: b.addr()})
		if err != nil {
			tr.Error = "start: " + err.Error()
			fmt.Fprintf(log, "bench: %s/%s: %v\n", sc.name, t.name(), err)
			continue
		}
		l.p = p
		lives = append(lives, l)
	}
	measure := func(l *liveTarget, d time.Duration) (sample, error) {
		if l.p != nil {
			if gone, err := l.p.exited(); gone {
				return sample{}, err
			}
		}
		return sc.load(b, l.addr, d, c.opts, &meter{pid: l.pid(), helper: helperPID(b)})
	}
	rounds := c.rounds
	if sc.once {
		rounds = 1
	} else {
		fmt.Fprintf(log, "bench: %s: warm-up\n", sc.name)
		for _, l := range lives {
			// A failed warm-up is noted but not fatal: on a busy machine one
			// window can stall; the rounds decide.
			if _, err := measure(l, c.warmup); err != nil {
				if gone, perr := l.exited(); gone {
					l.res.Error = perr.Error()
					continue
				}
				l.res.Failures = append(l.res.Failures, "warm-up: "+err.Error())
			}
			if l.p != nil {
				resetPeakRSS(l.p.pid())
			}
		}
	}
	for round := range rounds {
		for _, l := range lives {
			if l.res.Error != "" {
				continue
			}
			s, err := measure(l, c.duration)
			if err != nil {
				if gone, perr := l.exited(); gone {
					l.res.Error = perr.Error()
				} else {
					l.res.Failures = append(l.res.Failures, fmt.Sprintf("round %d: %v", round+1, err))
				}
				fmt.Fprintf(log, "bench: %s round %d %-8s failed: %v\n", sc.name, round+1, l.t.name(), err)
				continue
			}
			l.res.Rounds = append(l.res.Rounds, s)
			fmt.Fprintf(log, "bench: %s round %d %-8s %10.1f %s  cpu %.2fs  other %.2fs\n", sc.name, round+1, l.t.name(), s.Work/s.Seconds/sc.scale, sc.unit, s.CPU, s.OtherCPU)
		}
	}
	for _, l := range lives {
		l.res.summarize(sc)
	}
	if sc.openLoop != nil && c.openLoop {
		rate := sr.halfSlowestPeak()
		if c.openRate > 0 {
			rate = c.openRate
		}
		if c.short {
			rate = min(rate, 200)
		}
		// As many rounds as the closed loop, the targets in alternation:
		// a burst of the machine's other work lands on one round of one
		// target, not on a target's only figure.
		for round := range c.rounds {
			for _, l := range lives {
				if l.res.Error != "" || rate <= 0 {
					continue
				}
				s, err := sc.openLoop(l.addr, rate, c.duration, c.opts)
				if err != nil {
					l.res.Error = "open loop: " + err.Error()
					continue
				}
				l.res.OpenLoops = append(l.res.OpenLoops, s)
				fmt.Fprintf(log, "bench: %s open loop round %d %-8s %.0f/s p50 %.2fms p99 %.2fms errors %d\n", sc.name, round+1, l.t.name(), rate, s.P50ms, s.P99ms, s.Errors)
			}
		}
		for _, l := range lives {
			l.res.summarizeOpenLoop()
		}
	}
	for _, l := range lives {
		if l.p != nil {
			l.res.PeakRSS = peakRSS(l.p.pid())
		}
	}
	return sr
}
