package server

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/proxynow/proxynow/config"
)

// bigConfig is an HTTP entrypoint with routes routes spread over services
// services (two backends each, nothing listening: the benchmark measures
// compiling and swapping, not proxying) and one respond route that the
// latency probe uses. variant changes one route (or, with serviceOnly, one
// service's backend), so that consecutive reloads are real changes.
func bigConfig(routes, services, variant int, serviceOnly bool) string {
	var b strings.Builder
	b.WriteString(`entrypoint "web" { address = "127.0.0.1:0" }
http_route "probe" {
  entrypoints = ["web"]
  hosts       = ["probe.test"]
  service     = "probe"
}
service "probe" {
  respond { body = "ok" }
}
`)
	for i := range services {
		port := 30000 + i
		if i == 0 && serviceOnly {
			port += 5000 * variant
		}
		fmt.Fprintf(&b, "service \"s%d\" {\n  backend \"http://127.0.0.1:%d\" {}\n  backend \"http://127.0.0.1:%d\" {}\n}\n", i, 20000+i, port)
	}
	for i := range routes {
		prefix := fmt.Sprintf("/r%d/", i)
		if i == 0 && !serviceOnly {
			prefix = fmt.Sprintf("/v%d/", variant)
		}
		fmt.Fprintf(&b, "http_route \"r%d\" {\n  entrypoints = [\"web\"]\n  hosts       = [\"h%d.example.com\"]\n  path_prefix = %q\n  service     = \"s%d\"\n}\n",
			i, i%500, prefix, i%services)
	}
	return b.String()
}

// BenchmarkReload10kRoutes measures Server.Reload (compile, take over
// unchanged pools, swap) of a configuration with 10,000 http_routes and
// 1,000 services, and reports the p99 latency of requests sent during the
// reloads next to the p99 of requests sent without reloads. "route"
// reloads change one route (the shadowed-route search reruns), "service"
// ones one service's backend.
func BenchmarkReload10kRoutes(b *testing.B) {
	for _, mode := range []string{"route", "service"} {
		b.Run(mode, func(b *testing.B) { benchReload(b, mode == "service") })
	}
}

func benchReload(b *testing.B, serviceOnly bool) {
	var cfgs [2]*config.Config
	for i := range cfgs {
		c, err := config.Parse("big.hcl", []byte(bigConfig(10000, 1000, i, serviceOnly)))
		if err != nil {
			b.Fatal(err)
		}
		cfgs[i] = c
	}
	s, err := New(cfgs[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	url := "http://" + s.Addr("web").String() + "/"
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	probe := func(stop <-chan struct{}) []time.Duration {
		var lat []time.Duration
		for {
			select {
			case <-stop:
				return lat
			default:
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = "probe.test"
			t0 := time.Now()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return lat
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			time.Sleep(time.Millisecond) // a steady 1 kHz-ish probe, not a flood
		}
	}
	run := func(during func()) time.Duration {
		stop := make(chan struct{})
		var lat []time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { lat = probe(stop) })
		during()
		close(stop)
		wg.Wait()
		return p99(lat)
	}
	idle := run(func() { time.Sleep(time.Second) })
	b.ReportAllocs()
	b.ResetTimer()
	var during time.Duration
	during = run(func() {
		for i := range b.N {
			if _, err := s.Reload(cfgs[(i+1)%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(idle.Microseconds()), "p99-idle-µs")
	b.ReportMetric(float64(during.Microseconds()), "p99-reloading-µs")
}

// BenchmarkLoad10kRoutes is the parse-and-validate half of a reload of the
// same configuration.
func BenchmarkLoad10kRoutes(b *testing.B) {
	src := []byte(bigConfig(10000, 1000, 0, false))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := config.Parse("big.hcl", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad10kRoutesSyntaxOnly is the HCL lexer and parser alone on
// the same configuration: the part of BenchmarkLoad10kRoutes that is not
// proxynow code.
func BenchmarkLoad10kRoutesSyntaxOnly(b *testing.B) {
	src := []byte(bigConfig(10000, 1000, 0, false))
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := hclsyntax.ParseConfig(src, "big.hcl", hcl.InitialPos); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}
