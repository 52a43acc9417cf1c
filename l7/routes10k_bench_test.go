package l7

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
)

// The harness's routing scenario (integration/bench/load_routing.go):
// 1,000 hosts × 10 path prefixes, every request to a uniformly random host
// and path. Unlike BenchmarkRouterMatch, which asks for the same route
// again and again (everything in cache), these walk 4,096 requests spread
// over the whole table, so the cost of touching a route's data that is
// not in cache shows, as it does in the proxy.

const (
	scenHosts = 1000
	scenPaths = 10
)

// scenarioRoutes is the scenario's table: "r{i}_{j}", host
// "h{i}.bench.test", path_prefix "/p{j}/".
func scenarioRoutes() []*config.HTTPRoute {
	rs := make([]*config.HTTPRoute, 0, scenHosts*scenPaths)
	for i := range scenHosts {
		for j := range scenPaths {
			rs = append(rs, &config.HTTPRoute{
				Name:       fmt.Sprintf("r%d_%d", i, j),
				Hosts:      []string{fmt.Sprintf("h%d.bench.test", i)},
				PathPrefix: fmt.Sprintf("/p%d/", j),
				Service:    "backend",
			})
		}
	}
	return rs
}

// scenarioTargets are n hosts and paths of random routes of the table,
// with the name of the route each must match. The benchmarks set them on
// one request, as a proxy parses each request into the same memory: what
// is cold is the route's data, not the request's.
func scenarioTargets(n int) (hosts, paths, want []string) {
	rnd := rand.New(rand.NewPCG(42, 42))
	for range n {
		i, j := rnd.IntN(scenHosts), rnd.IntN(scenPaths)
		hosts = append(hosts, fmt.Sprintf("h%d.bench.test", i))
		paths = append(paths, fmt.Sprintf("/p%d/x", j))
		want = append(want, fmt.Sprintf("r%d_%d", i, j))
	}
	return hosts, paths, want
}

func scenarioRouter(tb testing.TB, h http.Handler) (*Router, []*config.HTTPRoute) {
	cfgs := scenarioRoutes()
	rs := make([]*Route, len(cfgs))
	for i, c := range cfgs {
		rs[i] = &Route{Config: c, Handler: h}
	}
	rt, err := NewRouter(rs)
	if err != nil {
		tb.Fatal(err)
	}
	return rt, cfgs
}

// BenchmarkRouterMatch10kUniform is Router.Match over the scenario's
// 10,000 routes, a different random route each time.
func BenchmarkRouterMatch10kUniform(b *testing.B) {
	rt, _ := scenarioRouter(b, http.NotFoundHandler())
	hosts, paths, want := scenarioTargets(4096)
	client := netip.MustParseAddr("192.0.2.1")
	r := httptest.NewRequest("GET", "/", nil)
	for k := range hosts {
		r.Host, r.URL.Path = hosts[k], paths[k]
		if got := rt.Match(r, r.Host, client); got == nil || got.Config.Name != want[k] {
			b.Fatalf("%s%s: got %v, want %s", r.Host, r.URL.Path, got, want[k])
		}
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		r.Host, r.URL.Path = hosts[k&4095], paths[k&4095]
		rt.Match(r, r.Host, client)
		k++
	}
}

// BenchmarkObserved10kUniform is the Observer (metrics on) around the
// Entry over the scenario's 10,000 routes, each answering at once: what
// routing and observing a request cost when its route is a random one.
func BenchmarkObserved10kUniform(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	rt, cfgs := scenarioRouter(b, ok)
	h := NewObserver(NewEntry("bench", rt, nil, nil), "bench", cfgs, NewMetrics(prometheus.NewRegistry()), nil)
	hosts, paths, _ := scenarioTargets(4096)
	r := httptest.NewRequest("GET", "/", nil)
	w := &nopWriter{h: http.Header{}}
	for k := range hosts { // every route's series made: the steady state
		clear(w.h)
		r.Host, r.URL.Path = hosts[k], paths[k]
		h.ServeHTTP(w, r)
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		clear(w.h)
		r.Host, r.URL.Path = hosts[k&4095], paths[k&4095]
		h.ServeHTTP(w, r)
		k++
	}
}
