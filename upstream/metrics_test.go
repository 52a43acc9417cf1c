package upstream

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/proxynow/proxynow/config"
)

func TestCollector(t *testing.T) {
	svc := service(config.BalancerRoundRobin, 1, 1, 1)
	svc.HTTP.HealthCheck = &config.HealthCheck{Path: "/"}
	svc.HTTP.CircuitBreaker = &config.CircuitBreaker{}
	p, err := NewPool(svc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := NewCollector(reg)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before SetPools: %d series, %v", n, err)
	}
	c.SetPools([]*Pool{p})
	bs := p.Backends()
	bs[1].SetHealthy(false)
	p.MarkDown(bs[2])
	bs[0].active.Add(2)
	bs[0].countProbe(nil)
	bs[0].countProbe(nil)
	bs[1].countProbe(errors.New("down"))
	a0, a1, a2 := bs[0].Addr, bs[1].Addr, bs[2].Addr
	want := `
# HELP proxynow_upstream_backend_up 1 when the backend is in rotation (health checks pass and no recent connection failure took it out), else 0.
# TYPE proxynow_upstream_backend_up gauge
proxynow_upstream_backend_up{backend="` + a0 + `",service="s"} 1
proxynow_upstream_backend_up{backend="` + a1 + `",service="s"} 0
proxynow_upstream_backend_up{backend="` + a2 + `",service="s"} 0
# HELP proxynow_upstream_backend_in_flight Requests (HTTP) or connections and flows (TCP, UDP) using the backend now: the pool's connections in use.
# TYPE proxynow_upstream_backend_in_flight gauge
proxynow_upstream_backend_in_flight{backend="` + a0 + `",service="s"} 2
proxynow_upstream_backend_in_flight{backend="` + a1 + `",service="s"} 0
proxynow_upstream_backend_in_flight{backend="` + a2 + `",service="s"} 0
# HELP proxynow_upstream_health_checks_total Active health check results.
# TYPE proxynow_upstream_health_checks_total counter
proxynow_upstream_health_checks_total{backend="` + a0 + `",result="failed",service="s"} 0
proxynow_upstream_health_checks_total{backend="` + a0 + `",result="ok",service="s"} 2
proxynow_upstream_health_checks_total{backend="` + a1 + `",result="failed",service="s"} 1
proxynow_upstream_health_checks_total{backend="` + a1 + `",result="ok",service="s"} 0
proxynow_upstream_health_checks_total{backend="` + a2 + `",result="failed",service="s"} 0
proxynow_upstream_health_checks_total{backend="` + a2 + `",result="ok",service="s"} 0
# HELP proxynow_upstream_breaker_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE proxynow_upstream_breaker_state gauge
proxynow_upstream_breaker_state{service="s"} 0
# HELP proxynow_upstream_breaker_transitions_total Circuit breaker transitions, by the state entered.
# TYPE proxynow_upstream_breaker_transitions_total counter
proxynow_upstream_breaker_transitions_total{service="s",state="closed"} 0
proxynow_upstream_breaker_transitions_total{service="s",state="half_open"} 0
proxynow_upstream_breaker_transitions_total{service="s",state="open"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// Trip the breaker: 20 failures at the default ratio.
	for range 20 {
		done, err := p.Breaker().Allow()
		if err != nil {
			break
		}
		done(false)
	}
	st := p.State()
	if st.Breaker == nil || st.Breaker.State != "open" || st.Breaker.Transitions["open"] != 1 {
		t.Errorf("State().Breaker = %+v, want open after one transition", st.Breaker)
	}
	if len(st.Backends) != 3 || !st.Backends[0].Up || st.Backends[1].Up || st.Backends[1].Healthy || !st.Backends[2].Down ||
		st.Backends[0].InFlight != 2 || st.Backends[0].HealthChecks.OK != 2 {
		t.Errorf("State().Backends = %+v", st.Backends)
	}
	bs[0].active.Add(-2)
}
