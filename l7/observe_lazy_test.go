package l7

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/proxynow/proxynow/config"
)

// statusHandler answers with the status in the path's last segment
// ("/a/503"), 200 without one.
var statusHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	fmt.Sscanf(r.URL.Path[len("/a/"):], "%d", &code)
	w.WriteHeader(code)
})

// lazyObserved is an Observer with metrics over routes a ("/a/", service
// sa) and b ("/b/", sb), the Router built from routerOrder of them.
func lazyObserved(t *testing.T, m *Metrics, routerOrder ...string) http.Handler {
	t.Helper()
	cfgs := map[string]*config.HTTPRoute{
		"a": {Name: "a", PathPrefix: "/a/", Service: "sa"},
		"b": {Name: "b", PathPrefix: "/b/", Service: "sb"},
	}
	var rs []*Route
	for _, name := range routerOrder {
		rs = append(rs, &Route{Config: cfgs[name], Handler: statusHandler})
	}
	router, err := NewRouter(rs)
	if err != nil {
		t.Fatal(err)
	}
	return NewObserver(NewEntry("web", router, nil, nil), "web", []*config.HTTPRoute{cfgs["a"], cfgs["b"]}, m, nil)
}

func serve(h http.Handler, method, target string) {
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, nil))
}

// A route's series appear with its first request, not before: a large
// configuration whose routes are mostly idle costs no children for them.
func TestObserverSeriesMadeOnFirstRequest(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	h := lazyObserved(t, m, "a", "b")
	for name, c := range map[string]prometheus.Collector{"requests": m.requests, "duration": m.duration, "size": m.size} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%s: %d series before any request, want 0", name, n)
		}
	}
	serve(h, "GET", "/a/x")
	serve(h, "GET", "/a/x")
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("duration: %d series after requests to route a, want 1", n)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("web", "a", "sa", "GET", "2xx", "HTTP/1.1")); got != 2 {
		t.Errorf("requests{route=a} = %v, want 2", got)
	}
	want := `
# HELP proxynow_http_response_size_bytes Response body bytes sent to clients.
# TYPE proxynow_http_response_size_bytes histogram
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="100"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="1000"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="10000"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="100000"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="1e+06"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="1e+07"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="1e+08"} 2
proxynow_http_response_size_bytes_bucket{entrypoint="web",route="a",service="sa",le="+Inf"} 2
proxynow_http_response_size_bytes_sum{entrypoint="web",route="a",service="sa"} 0
proxynow_http_response_size_bytes_count{entrypoint="web",route="a",service="sa"} 2
`
	if err := testutil.CollectAndCompare(m.size, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	serve(h, "GET", "/nowhere") // unmatched: its series too only now
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("duration: %d series after a 404, want 2 (a, unmatched)", n)
	}
}

// A route seeing more method × status × protocol combinations than it
// keeps inline (hotSlots) counts every one, also with requests racing to
// make the counters.
func TestObserverCountsManyCombinations(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	h := lazyObserved(t, m, "a", "b")
	type combo struct{ method, path, class string }
	var combos []combo
	for _, method := range []string{"GET", "POST", "PUT"} {
		for _, code := range []string{"200", "404", "503"} {
			combos = append(combos, combo{method, "/a/" + code, code[:1] + "xx"})
		}
	}
	if len(combos) <= hotSlots {
		t.Fatalf("%d combinations do not overflow %d inline counters", len(combos), hotSlots)
	}
	const workers, rounds = 4, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds * len(combos) {
				c := combos[(i+w)%len(combos)]
				serve(h, c.method, c.path)
			}
		})
	}
	wg.Wait()
	for _, c := range combos {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("web", "a", "sa", c.method, c.class, "HTTP/1.1")); got != workers*rounds {
			t.Errorf("requests{%s %s} = %v, want %d", c.method, c.class, got, workers*rounds)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != len(combos) {
		t.Errorf("%d request series, want %d", n, len(combos))
	}
}

// An Observer finds a route's metrics by its place in the Router's routes;
// a Router built in another order than the Observer's routes still gets
// each request counted under its own route.
func TestObserverRouterInOtherOrder(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	h := lazyObserved(t, m, "b", "a")
	serve(h, "GET", "/a/x")
	serve(h, "GET", "/b/x")
	serve(h, "GET", "/b/x")
	for _, c := range []struct {
		route, svc string
		want       float64
	}{{"a", "sa", 1}, {"b", "sb", 2}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("web", c.route, c.svc, "GET", "2xx", "HTTP/1.1")); got != c.want {
			t.Errorf("requests{route=%s} = %v, want %v", c.route, got, c.want)
		}
	}
}

// routeIndex lives in the padding after reqInfo's bools: one request's
// reqInfo stays in its size class (208 bytes).
func TestReqInfoSize(t *testing.T) {
	if size := unsafe.Sizeof(reqInfo{}); size > 208 {
		t.Errorf("reqInfo is %d bytes, over the 208-byte size class", size)
	}
}
