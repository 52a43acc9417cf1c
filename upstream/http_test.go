package upstream

import (
	"errors"
	"fmt"
	"hash/maphash"
	"testing"

	"github.com/proxynow/proxynow/config"
)

func httpPool(t *testing.T, kind string, addrs ...string) *Pool {
	t.Helper()
	svc := &config.Service{Name: "s", Balancer: kind}
	for _, a := range addrs {
		svc.Backends = append(svc.Backends, config.Backend{Address: a, Weight: 1, Scheme: config.SchemeHTTP})
	}
	return newPool(t, svc, Options{})
}

func pickOne(t *testing.T, p *Pool, k *Key) *Backend {
	t.Helper()
	var tried Tried
	b, err := p.Pick(k, &tried)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(b)
	return b
}

func TestRendezvousKeepsKeys(t *testing.T) {
	full := httpPool(t, config.BalancerHash, "a:1", "b:1", "c:1")
	less := httpPool(t, config.BalancerHash, "a:1", "b:1")
	seed := maphash.MakeSeed()
	const n = 3000
	kept, perBackend := 0, map[string]int{}
	for i := range n {
		k := &Key{Hash: maphash.String(seed, fmt.Sprint("client-", i))}
		before := pickOne(t, full, k).Addr
		perBackend[before]++
		if before == "c:1" {
			continue
		}
		if after := pickOne(t, less, k).Addr; after == before {
			kept++
		}
	}
	// Every key not owned by the removed backend must stay put; that is
	// about 2/3 of all keys.
	if moved := n - perBackend["c:1"] - kept; moved != 0 {
		t.Fatalf("%d keys of surviving backends moved", moved)
	}
	for addr, c := range perBackend {
		if c < n/3-200 || c > n/3+200 {
			t.Fatalf("uneven spread: %v (%s)", perBackend, addr)
		}
	}
	if float64(kept) < 0.6*n {
		t.Fatalf("kept %d of %d keys", kept, n)
	}
}

func TestStickyAndHealth(t *testing.T) {
	p := httpPool(t, config.BalancerRoundRobin, "a:1", "b:1", "c:1")
	b := p.Backends()[1]
	for range 5 {
		if got := pickOne(t, p, &Key{Sticky: b.ID()}); got != b {
			t.Fatalf("sticky picked %s, want %s", got.Addr, b.Addr)
		}
	}
	b.SetHealthy(false)
	for range 5 {
		if got := pickOne(t, p, &Key{Sticky: b.ID()}); got == b {
			t.Fatal("sticky picked an unhealthy backend")
		}
	}
	for _, x := range p.Backends() {
		x.SetHealthy(false)
	}
	var tried Tried
	if _, err := p.Pick(nil, &tried); !errors.Is(err, ErrNoHealthy) {
		t.Fatalf("err = %v, want ErrNoHealthy", err)
	}
}

func TestPickRetriesEachBackendOnce(t *testing.T) {
	for _, kind := range []string{config.BalancerRoundRobin, config.BalancerP2C, config.BalancerHash, config.BalancerLeastConn} {
		t.Run(kind, func(t *testing.T) {
			p := httpPool(t, kind, "a:1", "b:1", "c:1")
			var tried Tried
			seen := map[string]bool{}
			for range 3 {
				b, err := p.Pick(&Key{Hash: 42}, &tried)
				if err != nil {
					t.Fatal(err)
				}
				if seen[b.Addr] {
					t.Fatalf("%s picked twice", b.Addr)
				}
				seen[b.Addr] = true
				p.Done(b)
			}
			if _, err := p.Pick(&Key{Hash: 42}, &tried); err == nil {
				t.Fatal("a fourth pick succeeded")
			}
		})
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	p := httpPool(t, config.BalancerP2C, "a:1", "b:1")
	p.Backends()[0].active.Store(10)
	for range 20 {
		if got := pickOne(t, p, nil); got.Addr != "b:1" {
			t.Fatalf("picked %s with 10 in flight over an idle backend", got.Addr)
		}
	}
}

func BenchmarkPickHTTP(b *testing.B) {
	for _, kind := range []string{config.BalancerP2C, config.BalancerHash} {
		b.Run(kind, func(b *testing.B) {
			svc := &config.Service{Name: "s", Balancer: kind}
			for i := range 8 {
				svc.Backends = append(svc.Backends, config.Backend{Address: fmt.Sprint("h:", i), Weight: 1})
			}
			p := newPool(b, svc, Options{})
			k := &Key{Hash: 12345}
			b.ReportAllocs()
			for b.Loop() {
				var tried Tried
				x, _ := p.Pick(k, &tried)
				p.Done(x)
			}
		})
	}
}
