package upstream

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the state of backend pools at scrape time: whether each
// backend is up, its requests or connections in flight, its health-check
// results, and each circuit breaker's state and transitions. It reads the
// atomics the pools keep anyway, so the request path does nothing for it.
// One Collector serves the process; SetPools points it at the pools of the
// configuration being served (a reload calls it again).
type Collector struct {
	pools       atomic.Pointer[[]*Pool]
	up          *prometheus.Desc
	inFlight    *prometheus.Desc
	checks      *prometheus.Desc
	state       *prometheus.Desc
	transitions *prometheus.Desc
}

// NewCollector registers the upstream families on reg.
func NewCollector(reg prometheus.Registerer) *Collector {
	sb := []string{"service", "backend"}
	c := &Collector{
		up: prometheus.NewDesc("proxynow_upstream_backend_up",
			"1 when the backend is in rotation (health checks pass and no recent connection failure took it out), else 0.", sb, nil),
		inFlight: prometheus.NewDesc("proxynow_upstream_backend_in_flight",
			"Requests (HTTP) or connections and flows (TCP, UDP) using the backend now: the pool's connections in use.", sb, nil),
		checks: prometheus.NewDesc("proxynow_upstream_health_checks_total",
			"Active health check results.", []string{"service", "backend", "result"}, nil),
		state: prometheus.NewDesc("proxynow_upstream_breaker_state",
			"Circuit breaker state: 0 closed, 1 half-open, 2 open.", []string{"service"}, nil),
		transitions: prometheus.NewDesc("proxynow_upstream_breaker_transitions_total",
			"Circuit breaker transitions, by the state entered.", []string{"service", "state"}, nil),
	}
	reg.MustRegister(c)
	return c
}

// SetPools sets the pools reported from now on.
func (c *Collector) SetPools(pools []*Pool) {
	if c != nil {
		c.pools.Store(&pools)
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.inFlight, c.checks, c.state, c.transitions} {
		ch <- d
	}
}

var breakerStates = [...]string{BreakerClosed: "closed", BreakerHalfOpen: "half_open", BreakerOpen: "open"}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	pp := c.pools.Load()
	if pp == nil {
		return
	}
	for _, p := range *pp {
		now := p.now()
		for _, b := range p.backends {
			up := 0.0
			if b.Healthy() && !b.Down(now) {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, p.name, b.Addr)
			ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(b.Active()), p.name, b.Addr)
			if p.health != nil {
				ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(b.probes[0].Load()), p.name, b.Addr, "ok")
				ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(b.probes[1].Load()), p.name, b.Addr, "failed")
			}
		}
		if br := p.breaker; br != nil {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(br.State()), p.name)
			for s, name := range breakerStates {
				ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(br.Transitions(s)), p.name, name)
			}
		}
	}
}

// countProbe records one health check result.
func (b *Backend) countProbe(err error) {
	if err == nil {
		b.probes[0].Add(1)
	} else {
		b.probes[1].Add(1)
	}
}

// PoolState is a pool as the admin endpoint's /upstreams shows it.
type PoolState struct {
	Service  string         `json:"service"`
	Balancer string         `json:"balancer"`
	Breaker  *BreakerState  `json:"breaker,omitempty"`
	Backends []BackendState `json:"backends"`
}

// BackendState is one backend's state.
type BackendState struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	// Up: in rotation (Healthy and not Down).
	Up bool `json:"up"`
	// Healthy is the active health check's verdict (true without checks).
	Healthy bool `json:"healthy"`
	// Down: skipped for fail_timeout after a failed connection.
	Down     bool  `json:"down"`
	InFlight int64 `json:"in_flight"`
	// HealthChecks counts results; nil without a health_check block.
	HealthChecks *ProbeCounts `json:"health_checks,omitempty"`
}

// ProbeCounts are health check results since the pool was built.
type ProbeCounts struct {
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"`
}

// BreakerState is a circuit breaker's state and transitions.
type BreakerState struct {
	State       string            `json:"state"` // closed, half_open, open
	Transitions map[string]uint64 `json:"transitions"`
}

// State snapshots the pool.
func (p *Pool) State() PoolState {
	now := p.now()
	st := PoolState{Service: p.name, Balancer: p.kind, Backends: make([]BackendState, 0, len(p.backends))}
	for _, b := range p.backends {
		bs := BackendState{Address: b.Addr, Weight: b.Weight, Healthy: b.Healthy(), Down: b.Down(now), InFlight: b.Active()}
		bs.Up = bs.Healthy && !bs.Down
		if p.health != nil {
			bs.HealthChecks = &ProbeCounts{OK: b.probes[0].Load(), Failed: b.probes[1].Load()}
		}
		st.Backends = append(st.Backends, bs)
	}
	if br := p.breaker; br != nil {
		bs := &BreakerState{Transitions: map[string]uint64{}}
		if s := br.State(); s >= 0 && s < len(breakerStates) {
			bs.State = breakerStates[s]
		}
		for s, name := range breakerStates {
			bs.Transitions[name] = br.Transitions(s)
		}
		st.Breaker = bs
	}
	return st
}
