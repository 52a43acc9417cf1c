//go:build linux

package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is everything one run measured; it is the JSON written by -json.
type report struct {
	Started   time.Time         `json:"started"`
	Machine   map[string]string `json:"machine"`
	Settings  map[string]any    `json:"settings"`
	Skipped   map[string]string `json:"skipped,omitempty"` // target -> why
	Scenarios []*scenarioResult `json:"scenarios"`
}

type scenarioResult struct {
	Name    string          `json:"name"`
	Title   string          `json:"title"`
	Unit    string          `json:"unit"`
	CPUUnit string          `json:"cpu_unit"`
	PerCPU  bool            `json:"headline_per_cpu"`
	Loader  string          `json:"loader,omitempty"`
	Error   string          `json:"error,omitempty"`
	Targets []*targetResult `json:"targets"`
	sc      *scenario
}

// spread is the median and range of one figure over the rounds.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

type targetResult struct {
	Target string `json:"target"`
	Error  string `json:"error,omitempty"` // did not start, or died
	// Failures are windows that failed (no work got through) while the
	// target stayed up; those rounds are left out of the figures.
	Failures []string `json:"failures,omitempty"`
	Rounds   []sample `json:"rounds"`
	// Throughput is work per second in the scenario's unit.
	Throughput spread `json:"throughput"`
	// CPUPerUnit is the target's CPU seconds per unit of work times the
	// scenario's cpuScale (e.g. µs per handshake); WorkPerCPU is work per
	// CPU-second; Cores is CPU seconds per second. Zero for direct.
	CPUPerUnit spread `json:"cpu_per_unit"`
	WorkPerCPU spread `json:"work_per_cpu_second"`
	Cores      spread `json:"cores"`
	// LoaderCores is the harness's CPU seconds per second (Go loaders).
	LoaderCores spread `json:"loader_cores"`
	// MachinePerUnit is CPUPerUnit with the harness's CPU added
	// (report_udp.go); the harness's alone for direct.
	MachinePerUnit spread  `json:"machine_cpu_per_unit"`
	P50ms          float64 `json:"p50_ms,omitempty"` // closed loop, median over rounds
	P99ms          float64 `json:"p99_ms,omitempty"`
	LossPct        float64 `json:"loss_pct,omitempty"`
	Errors         int64   `json:"errors,omitempty"`
	PeakRSS        int64   `json:"peak_rss_bytes,omitempty"`
	// OpenLoops are the open-loop rounds; OpenLoop is the one with the
	// median p99, and OpenP50/OpenP99 the spreads over them.
	OpenLoops []sample `json:"open_loops,omitempty"`
	OpenLoop  *sample  `json:"open_loop,omitempty"`
	OpenP50   spread   `json:"open_loop_p50_ms,omitzero"`
	OpenP99   spread   `json:"open_loop_p99_ms,omitzero"`
}

// fmtMs is a spread of milliseconds: "median (min–max)", or the one value.
func fmtMs(s spread) string {
	if s.Min == s.Max {
		return fmt.Sprintf("%.3f", s.Median)
	}
	return fmt.Sprintf("%.3f (%.3f–%.3f)", s.Median, s.Min, s.Max)
}

// summarizeOpenLoop sets OpenLoop, OpenP50 and OpenP99 from OpenLoops.
func (tr *targetResult) summarizeOpenLoop() {
	if len(tr.OpenLoops) == 0 {
		return
	}
	var p50, p99 []float64
	for _, s := range tr.OpenLoops {
		p50 = append(p50, s.P50ms)
		p99 = append(p99, s.P99ms)
	}
	tr.OpenP50, tr.OpenP99 = spreadOf(p50), spreadOf(p99)
	byP99 := slices.Clone(tr.OpenLoops)
	slices.SortFunc(byP99, func(a, b sample) int { return cmp.Compare(a.P99ms, b.P99ms) })
	tr.OpenLoop = &byP99[(len(byP99)-1)/2]
}

func (tr *targetResult) summarize(sc *scenario) {
	var thr, cpu, per, cores, loader, p50, p99 []float64
	var sent, lost int64
	for _, s := range tr.Rounds {
		thr = append(thr, s.Work/s.Seconds/sc.scale)
		if s.CPU > 0 && s.Work > 0 {
			cpu = append(cpu, s.CPU/s.Work*sc.cpuScale)
			per = append(per, s.Work/s.CPU)
			cores = append(cores, s.CPU/s.Seconds)
		}
		if s.LoaderCPU > 0 {
			loader = append(loader, s.LoaderCPU/s.Seconds)
		}
		if (s.hist != nil && s.hist.n > 0) || s.P99ms > 0 { // wrk reports percentiles only
			p50 = append(p50, s.P50ms)
			p99 = append(p99, s.P99ms)
		}
		sent += s.Sent
		lost += s.Lost
		tr.Errors += s.Errors
	}
	tr.Throughput, tr.CPUPerUnit, tr.WorkPerCPU, tr.Cores = spreadOf(thr), spreadOf(cpu), spreadOf(per), spreadOf(cores)
	tr.LoaderCores = spreadOf(loader)
	tr.MachinePerUnit = machinePerUnit(sc, tr.Rounds)
	tr.P50ms, tr.P99ms = spreadOf(p50).Median, spreadOf(p99).Median
	if sent > 0 {
		tr.LossPct = 100 * float64(lost) / float64(sent)
	}
}

// headline is the figure the ratios compare: work per second, or work per
// CPU-second for scenarios about efficiency. Zero when not measured.
func (tr *targetResult) headline(perCPU bool) float64 {
	if perCPU {
		return tr.WorkPerCPU.Median
	}
	return tr.Throughput.Median
}

// halfSlowestPeak is the open-loop rate: half the lowest median throughput
// (work per second) among the proxies measured.
func (sr *scenarioResult) halfSlowestPeak() float64 {
	lo := 0.0
	for _, tr := range sr.Targets {
		if tr.Target == directName || tr.Error != "" || tr.Throughput.Median == 0 {
			continue
		}
		if v := tr.Throughput.Median * sr.sc.scale; lo == 0 || v < lo {
			lo = v
		}
	}
	return lo / 2
}

func newReport(c *config) *report {
	r := &report{
		Started: time.Now().UTC(),
		Machine: map[string]string{
			"cpus":   fmt.Sprint(runtime.NumCPU()),
			"go":     runtime.Version(),
			"kernel": firstLine("uname", "-r"),
			// Other work on the machine shows here and in the spreads.
			"loadavg_start": loadavg(),
		},
		Settings: map[string]any{
			"duration": c.duration.String(), "warmup": c.warmup.String(), "rounds": c.rounds,
			"tcp_conns": c.opts.conns, "udp_flows": c.opts.flows, "udp_window": c.opts.window,
			"tls_workers": c.opts.workers, "short": c.short, "go_loaders": c.opts.goLoaders,
		},
		Skipped: map[string]string{},
	}
	for _, name := range c.targets {
		switch name {
		case "nginx":
			r.Machine["nginx"] = firstLine("nginx", "-v")
		case "haproxy":
			r.Machine["haproxy"] = firstLine("haproxy", "-v")
		case "caddy":
			r.Machine["caddy"] = toolVersion("caddy", "version")
		}
	}
	if !c.opts.goLoaders {
		r.Machine["wrk"] = toolVersion("wrk", "-v")
		r.Machine["h2load"] = toolVersion("h2load", "--version")
	}
	if root, err := moduleRoot(); err == nil {
		cmd := exec.Command("git", "describe", "--always", "--dirty")
		cmd.Dir = root
		if out, err := cmd.Output(); err == nil {
			r.Machine["proxynow"] = strings.TrimSpace(string(out))
		}
	}
	return r
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "## proxynow side-by-side benchmark\n\n")
	fmt.Fprintf(w, "%s; %s CPUs; kernel %s; %s", r.Started.Format(time.RFC3339), r.Machine["cpus"], r.Machine["kernel"], r.Machine["go"])
	for _, k := range []string{"proxynow", "nginx", "haproxy", "caddy", "wrk", "h2load"} {
		if v := r.Machine[k]; v != "" {
			fmt.Fprintf(w, "; %s: %s", k, v)
		}
	}
	fmt.Fprintf(w, "; load average %s at start, %s at end", r.Machine["loadavg_start"], r.Machine["loadavg_end"])
	fmt.Fprintf(w, "\n\nEach target: one core's worth (GOMAXPROCS=1, worker_processes 1, nbthread 1; HTTP backend GOMAXPROCS=1 too). %v rounds of %v per target, alternating, after a %v warm-up; median (min–max over rounds). CPU is the target's processes only (utime+stime); peak RSS is VmHWM summed over them, measured after warm-up.\n",
		r.Settings["rounds"], r.Settings["duration"], r.Settings["warmup"])
	for name, why := range r.Skipped {
		fmt.Fprintf(w, "\nSkipped %s: %s\n", name, why)
	}
	for _, sr := range r.Scenarios {
		sr.markdown(w)
	}
}

func fmtSpread(s spread, prec int) string {
	if s.Median == 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

func precFor(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	default:
		return 2
	}
}

// loaderBound: a one-core target using less than this much CPU was not
// saturated.
const loaderBound = 0.85

func (sr *scenarioResult) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", sr.Title)
	if sr.Error != "" {
		fmt.Fprintf(w, "Not run: %s\n", sr.Error)
		return
	}
	var ok []*targetResult
	for _, tr := range sr.Targets {
		if tr.Error == "" && len(tr.Rounds) > 0 {
			ok = append(ok, tr)
		}
	}
	headline := sr.Unit
	if sr.PerCPU {
		headline = "work per CPU-second"
	}
	if sr.Loader != "" {
		fmt.Fprintf(w, "Load: %s.\n\n", sr.Loader)
	}
	fmt.Fprintf(w, "Ratios compare %s (row ÷ column).\n\n", headline)
	cols := []string{"target", sr.Unit, sr.CPUUnit}
	if sr.PerCPU {
		cols = append(cols, "per CPU-s")
	}
	cols = append(cols, "cores used")
	if sr.sc.goLoader {
		cols = append(cols, "loader cores")
	}
	if machineColumn(sr.sc) {
		cols = append(cols, strings.Replace(sr.CPUUnit, "CPU", "CPU with harness", 1))
	}
	if sr.sc.latency {
		cols = append(cols, "p50 ms", "p99 ms")
	}
	if sr.sc.kind == kindUDP || sr.sc.kind == kindQUICPass {
		cols = append(cols, "loss")
	}
	cols = append(cols, "peak RSS MiB")
	for _, o := range ok {
		cols = append(cols, "vs "+o.Target)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, tr := range ok {
		row := []string{tr.Target, fmtSpread(tr.Throughput, precFor(tr.Throughput.Median)), fmtSpread(tr.CPUPerUnit, precFor(tr.CPUPerUnit.Median))}
		if sr.PerCPU {
			row = append(row, fmtSpread(tr.WorkPerCPU, 0))
		}
		row = append(row, fmtSpread(tr.Cores, 2))
		if sr.sc.goLoader {
			row = append(row, fmtSpread(tr.LoaderCores, 2))
		}
		if machineColumn(sr.sc) {
			row = append(row, fmtSpread(tr.MachinePerUnit, precFor(tr.MachinePerUnit.Median)))
		}
		if sr.sc.latency {
			row = append(row, fmt.Sprintf("%.3f", tr.P50ms), fmt.Sprintf("%.3f", tr.P99ms))
		}
		if sr.sc.kind == kindUDP || sr.sc.kind == kindQUICPass {
			row = append(row, fmt.Sprintf("%.3f%%", tr.LossPct))
		}
		if tr.PeakRSS > 0 {
			row = append(row, fmt.Sprintf("%.1f", float64(tr.PeakRSS)/(1<<20)))
		} else {
			row = append(row, "–")
		}
		for _, o := range ok {
			a, b := tr.headline(sr.PerCPU), o.headline(sr.PerCPU)
			switch {
			case o == tr:
				row = append(row, "—")
			case a == 0 || b == 0:
				row = append(row, "–")
			default:
				row = append(row, fmt.Sprintf("%.2f×", a/b))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	if machineColumn(sr.sc) {
		writeCPUBound(w, sr, ok)
	}
	for _, tr := range ok {
		if c := tr.Cores.Median; c > 0 && c < loaderBound {
			fmt.Fprintf(w, "\n%s used %.2f of its core: the load generator or the machine's other work, not %s, set its pace; CPU per request is the fairer comparison.\n", tr.Target, c, tr.Target)
		}
	}
	var open []*targetResult
	for _, tr := range ok {
		if tr.OpenLoop != nil {
			open = append(open, tr)
		}
	}
	if len(open) > 0 {
		fmt.Fprintf(w, "\nOpen loop at %.0f/s (half the slowest proxy's median unless -open-rate set it), latency from each request's scheduled start; median (min–max) over %d rounds, the targets in alternation:\n\n", open[0].OpenLoop.Rate, len(open[0].OpenLoops))
		fmt.Fprintf(w, "| target | completed/s | p50 ms | p99 ms | errors | %s's p99 ÷ this |\n|---|---|---|---|---|---|\n", open[0].Target)
		for _, tr := range open {
			s := tr.OpenLoop
			var errs int64
			for _, r := range tr.OpenLoops {
				errs += r.Errors
			}
			ratio := "—"
			if p99 := tr.OpenP99.Median; tr != open[0] && p99 > 0 {
				ratio = fmt.Sprintf("%.2f×", open[0].OpenP99.Median/p99)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %s |\n", tr.Target, s.Work/s.Seconds, fmtMs(tr.OpenP50), fmtMs(tr.OpenP99), errs, ratio)
		}
	}
	var other []float64
	for _, tr := range ok {
		for _, s := range tr.Rounds {
			other = append(other, s.OtherCPU/s.Seconds)
		}
	}
	if o := spreadOf(other); len(other) > 0 {
		fmt.Fprintf(w, "\nNoise: other processes on the machine used %.2f cores (%.2f–%.2f) during the rounds.\n", o.Median, o.Min, o.Max)
	}
	for _, tr := range sr.Targets {
		if tr.Error != "" {
			fmt.Fprintf(w, "\n%s failed: %s\n", tr.Target, tr.Error)
		}
		for _, f := range tr.Failures {
			fmt.Fprintf(w, "\n%s: %s (left out)\n", tr.Target, f)
		}
		if tr.Errors > 0 {
			fmt.Fprintf(w, "\n%s: %d failed operations during measured rounds\n", tr.Target, tr.Errors)
		}
	}
}
