//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// A scenario is one workload run against every target that supports its
// route kind. Issue 9's 1-3 (HTTP/1.1 keep-alive, a connection per
// request, HTTP/2 over TLS), 4, 6, 7, 8 (idle connection memory) and 9
// (routing) are here; 5 joins the same way: a routeKind (targets.go), a
// load function and an entry in scenarios.
type scenario struct {
	name  string // flag value, e.g. "tcp-bulk"
	title string // table heading
	kind  routeKind

	// unit and scale: throughput is shown as work/scale per second in unit.
	unit  string
	scale float64
	// cpuUnit and cpuScale: CPU seconds per work unit times cpuScale.
	cpuUnit  string
	cpuScale float64
	// perCPU: the headline (and the ratios) is work per CPU-second of the
	// target rather than work per second.
	perCPU bool
	// latency: p50/p99 are meaningful and shown.
	latency bool
	// goLoader: the load comes from the harness's own goroutines, so the
	// harness's CPU is the loader's and is shown beside the target's.
	goLoader bool

	newBackend func() (backend, error)
	// load drives addr for d, calling m.begin once steady and m.end when the
	// measured window closes.
	load func(b backend, addr string, d time.Duration, o options, m *meter) (sample, error)
	// openLoop, when set, drives addr at a fixed rate for d and measures
	// latency from each request's intended start (no coordinated omission).
	openLoop func(addr string, rate float64, d time.Duration, o options) (sample, error)
	// loader, when set, names the load generator used with o (for the report).
	loader func(o options) string
	// once: one measured window per target, no warm-up (a measurement that
	// needs a process never loaded before, such as memory per connection).
	once bool
}

// backend is the scenario's server, shared by its targets one at a time.
type backend interface {
	addr() string
	close()
}

// sample is one measured run of one target.
type sample struct {
	Work    float64 `json:"work"`    // bytes, datagrams or handshakes
	Seconds float64 `json:"seconds"` // wall-clock length of the window
	CPU     float64 `json:"cpu_seconds,omitempty"`
	Errors  int64   `json:"errors,omitempty"`
	Sent    int64   `json:"sent,omitempty"` // UDP: datagrams sent
	Lost    int64   `json:"lost,omitempty"` // UDP: sent and never answered
	P50ms   float64 `json:"p50_ms,omitempty"`
	P99ms   float64 `json:"p99_ms,omitempty"`
	Rate    float64 `json:"rate,omitempty"` // open loop: the offered rate per second
	// OtherCPU is CPU seconds the rest of the machine (neither the target
	// nor the harness) used in the window: the noise of this round.
	OtherCPU float64 `json:"other_cpu_seconds"`
	// LoaderCPU is the harness's own CPU seconds in the window: its Go
	// load generator, when the scenario uses one (a loader near the free
	// cores while the target is under its one core means the loader, not
	// the target, set the pace).
	LoaderCPU float64 `json:"loader_cpu_seconds,omitempty"`
	hist      *histogram
}

func (s *sample) finishLatency() {
	if s.hist != nil && s.hist.n > 0 {
		s.P50ms = float64(s.hist.quantile(0.50)) / 1e6
		s.P99ms = float64(s.hist.quantile(0.99)) / 1e6
	}
}

// meter brackets the measured window: wall-clock time and the target's CPU.
type meter struct {
	pid        int // 0: direct, no CPU to measure
	helper     int // a backend process of the harness's (0: none): not noise
	t0, t1     time.Time
	cpu0, cpu1 cpuSample
	// machine-wide busy ticks and the harness's own, for OtherCPU
	busy0, busy1, self0, self1 uint64
	loader0, loader1           uint64 // the harness alone
}

func (m *meter) begin() {
	if m.pid != 0 {
		m.cpu0 = sampleCPU(m.pid)
	}
	m.loader0 = selfTicks()
	m.busy0, m.self0 = machineBusy(), m.loader0+helperTicks(m.helper)
	m.t0 = time.Now()
}

func (m *meter) end() {
	m.t1 = time.Now()
	m.loader1 = selfTicks()
	m.busy1, m.self1 = machineBusy(), m.loader1+helperTicks(m.helper)
	if m.pid != 0 {
		m.cpu1 = sampleCPU(m.pid)
	}
}

func (m *meter) fill(s *sample) {
	s.Seconds = m.t1.Sub(m.t0).Seconds()
	if m.pid != 0 {
		s.CPU = cpuSeconds(m.cpu0, m.cpu1)
	}
	s.LoaderCPU = float64(m.loader1-m.loader0) / clockTicks
	if m.busy1 > m.busy0 {
		s.OtherCPU = max(0, float64(m.busy1-m.busy0)/clockTicks-s.CPU-float64(m.self1-m.self0)/clockTicks)
	}
}

// options are the load shape, the same for every target.
type options struct {
	conns   int // TCP bulk: parallel connections
	flows   int // UDP: client sockets, each a flow
	window  int // UDP: datagrams in flight per flow
	workers int // TLS: concurrent handshaking clients
	// goLoaders: the harness's Go HTTP clients instead of wrk and h2load
	// (always in -short mode; also whenever those are not installed).
	goLoaders bool
	// idleConns: idle keep-alive connections opened per target (scenario 8).
	idleConns int
}

func httpScenario(name, title string, kind routeKind, mode httpMode) *scenario {
	return &scenario{
		name: name, title: title, kind: kind,
		unit: "req/s", scale: 1, cpuUnit: "CPU µs/req", cpuScale: 1e6, latency: true,
		newBackend: func() (backend, error) { return startHTTPBackend() },
		load:       httpLoad(mode),
		openLoop:   openLoopHTTP(mode),
		loader:     func(o options) string { return loaderFor(mode, o) },
	}
}

var scenarios = []*scenario{
	httpScenario("http1-keepalive", "1. HTTP/1.1 keep-alive, 13-byte response", kindHTTP, modeKeepAlive),
	httpScenario("http1-close", "2. HTTP/1.1, a new connection per request, 13-byte response", kindHTTP, modeClose),
	httpScenario("h2-tls", "3. HTTP/2 over TLS 1.3, 10 connections × 10 streams, 13-byte response", kindHTTPS, modeH2),
	// Not one of issue 9's: scenario 3 with no backend, each target
	// answering itself, which shows how much of scenario 3's cost is the
	// HTTP/2 server rather than the proxying.
	httpScenario("h2-static", "3b. HTTP/2 over TLS 1.3, 10 connections × 10 streams, 13-byte response from the target itself (no backend)", kindHTTPSStatic, modeH2),
	{
		name: "tcp-bulk", title: "6. TCP bulk throughput", kind: kindTCP,
		unit: "MB/s", scale: 1e6, cpuUnit: "CPU ms/GB", cpuScale: 1e3 * 1e9,
		newBackend: func() (backend, error) { return startTCPBackend(false) },
		load:       loadTCPBulk,
	},
	{
		name: "udp-64", title: "7. UDP echo, 64 B datagrams", kind: kindUDP,
		unit: "kpkt/s", scale: 1e3, cpuUnit: "CPU µs/pkt", cpuScale: 1e6, latency: true, goLoader: true,
		newBackend: func() (backend, error) { return startUDPEcho(2) },
		load:       udpLoad(64),
		loader:     udpLoader,
	},
	{
		name: "udp-1200", title: "7. UDP echo, 1200 B datagrams", kind: kindUDP,
		unit: "kpkt/s", scale: 1e3, cpuUnit: "CPU µs/pkt", cpuScale: 1e6, latency: true, goLoader: true,
		newBackend: func() (backend, error) { return startUDPEcho(2) },
		load:       udpLoad(1200),
		loader:     udpLoader,
	},
	{
		name: "idle-conns", title: "8. Memory per idle HTTP/1.1 keep-alive connection (RSS growth ÷ connections; lower is better)", kind: kindHTTP,
		unit: "KiB/conn", scale: 1024, cpuUnit: "–", cpuScale: 1, once: true,
		newBackend: func() (backend, error) { return startHTTPBackend() },
		load:       loadIdle,
		loader: func(o options) string {
			return fmt.Sprintf("%d connections, 32 opened at a time, one GET each, then idle %v", o.idleConns, idleSettle)
		},
	},
	{
		name: "routing", title: fmt.Sprintf("9. Routing: %d hosts × %d paths, HTTP/1.1 keep-alive, 13-byte response", routeHosts, routePaths), kind: kindHTTPRouting,
		unit: "req/s", scale: 1, cpuUnit: "CPU µs/req", cpuScale: 1e6, latency: true,
		newBackend: func() (backend, error) { return startHTTPBackend() },
		load:       routingLoad,
		loader:     routingLoader,
	},
	{
		name: "tls-handshake", title: "4. TLS 1.3 handshakes, ECDSA P-256, one echo per connection", kind: kindTLSTerminate,
		unit: "hs/s", scale: 1, cpuUnit: "CPU µs/hs", cpuScale: 1e6, perCPU: true, latency: true,
		newBackend: func() (backend, error) { return startTCPBackend(true) },
		load:       loadTLS,
		openLoop:   openLoopTLS,
	},
	h3Scenario,
	quicPassScenario,
}

func scenarioNames() string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ",")
}

func scenarioByName(name string) (*scenario, error) {
	for _, s := range scenarios {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown scenario %q (have %s)", name, scenarioNames())
}
