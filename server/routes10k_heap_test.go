package server

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// routingConfig is the harness's routing scenario (integration/bench):
// hosts × paths http_routes "r{i}_{j}" (host "h{i}.bench.test", prefix
// "/p{j}/") to one backend.
func routingConfig(hosts, paths int) string {
	var b strings.Builder
	b.WriteString("entrypoint \"bench\" { address = \"127.0.0.1:0\" }\nservice \"backend\" {\n  backend \"http://127.0.0.1:9\" {}\n}\n")
	for i := range hosts {
		for j := range paths {
			fmt.Fprintf(&b, "http_route \"r%d_%d\" {\n  entrypoints = [\"bench\"]\n  hosts       = [\"h%d.bench.test\"]\n  path_prefix = \"/p%d/\"\n  service     = \"backend\"\n}\n", i, j, i, j)
		}
	}
	return b.String()
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A compiled configuration of 10,000 http_routes stays small: no metric
// children for routes not yet asked for, no per-route tables made ahead,
// fingerprints as digests. It measured 42 MiB before (20,000 histogram
// children alone were 26 MiB) and 11 MiB after: the 24 MiB bound leaves
// room for the config, router and trackers to grow by half again, and
// fails if children are made up front again.
func TestCompiled10kRoutesHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 routes")
	}
	src := []byte(routingConfig(1000, 10))
	base := liveHeap()
	cfg, err := config.Parse("routes.hcl", src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg = nil
	grown := int64(liveHeap()) - int64(base)
	runtime.KeepAlive(s)
	const limit = 24 << 20
	t.Logf("config and server of 10,000 routes: %.1f MiB live", float64(grown)/(1<<20))
	if grown > limit {
		t.Errorf("10,000 routes compiled hold %.1f MiB, over %d MiB", float64(grown)/(1<<20), limit>>20)
	}
}
