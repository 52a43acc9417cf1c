package l7

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxynow/proxynow/config"
)

// BenchmarkH2ProxyServed is BenchmarkH2Proxy as proxynow serves it: the
// observer (metrics) over the entry handler, and timeouts.idle at its
// default, which turns on the stalled-stream sweep (h2stall.go).
func BenchmarkH2ProxyServed(b *testing.B) {
	px, _ := helloProxy(b)
	routes := []*config.HTTPRoute{{Name: "r", PathPrefix: "/", Service: "svc"}}
	router, err := NewRouter([]*Route{{Config: routes[0], Handler: px}})
	if err != nil {
		b.Fatal(err)
	}
	obs := NewObserver(NewEntry("web", router, nil, nil), "web", routes, NewMetrics(prometheus.NewRegistry()), nil)
	f := startH2Front(b, obs, ServerOptions{IdleTimeout: 5 * time.Minute})
	runH2Bench(b, f)
}
