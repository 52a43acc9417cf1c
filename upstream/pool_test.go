package upstream

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func service(kind string, weights ...int) *config.Service {
	svc := &config.Service{Name: "s", Balancer: kind, ConnectTimeout: time.Second, FailTimeout: time.Minute}
	for i, w := range weights {
		svc.Backends = append(svc.Backends, config.Backend{Address: string(rune('a' + i)), Weight: w})
	}
	return svc
}

// picks runs n picks with no backend tried or down and returns the sequence
// of backend addresses.
func picks(p *Pool, n int) string {
	var b strings.Builder
	for range n {
		var tried bitset
		b.WriteString(p.backends[p.pick(&tried, at(time.Now()), false)].Addr)
	}
	return b.String()
}

func count(seq string) map[rune]int {
	m := map[rune]int{}
	for _, r := range seq {
		m[r]++
	}
	return m
}

func TestBalancers(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		weights []int
		n       int
		want    string // exact sequence, when the balancer promises one
		counts  map[rune]int
	}{
		{name: "round robin", kind: config.BalancerRoundRobin, weights: []int{1, 1, 1}, n: 6, want: "abcabc"},
		{name: "round robin ignores weights", kind: "", weights: []int{5, 1, 1}, n: 3, want: "abc"},
		// nginx's documented smooth sequence for 5,1,1.
		{name: "smooth weighted", kind: config.BalancerWeighted, weights: []int{5, 1, 1}, n: 7, want: "aabacaa"},
		{name: "weighted 3:1:1 over 100", kind: config.BalancerWeighted, weights: []int{3, 1, 1}, n: 100,
			counts: map[rune]int{'a': 60, 'b': 20, 'c': 20}},
		{name: "least conn idle pool rotates", kind: config.BalancerLeastConn, weights: []int{1, 1, 1}, n: 3,
			counts: map[rune]int{'a': 1, 'b': 1, 'c': 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t, service(tt.kind, tt.weights...), Options{})
			got := picks(p, tt.n)
			if tt.want != "" && got != tt.want {
				t.Fatalf("sequence = %q, want %q", got, tt.want)
			}
			if tt.counts != nil {
				c := count(got)
				for k, v := range tt.counts {
					if c[k] != v {
						t.Fatalf("counts = %v, want %v", c, tt.counts)
					}
				}
			}
		})
	}
}

func TestLeastConnPrefersFewestPerWeight(t *testing.T) {
	p := newPool(t, service(config.BalancerLeastConn, 1, 1, 2), Options{})
	p.backends[0].active.Store(3)
	p.backends[1].active.Store(1)
	p.backends[2].active.Store(3) // 1.5 per unit of weight
	for range 5 {
		if got := picks(p, 1); got != "b" {
			t.Fatalf("picked %q, want b (fewest active per weight)", got)
		}
	}
	p.backends[1].active.Store(2) // b: 2/1, c: 3/2
	if got := picks(p, 1); got != "c" {
		t.Fatalf("picked %q, want c", got)
	}
}

func TestRandomFollowsWeights(t *testing.T) {
	p := newPool(t, service(config.BalancerRandom, 3, 1), Options{})
	c := count(picks(p, 20000))
	// Expected 15000/5000; the standard deviation is ~61, so ±500 cannot
	// fail by chance in practice but catches a balancer ignoring weights.
	if c['a'] < 14500 || c['a'] > 15500 {
		t.Fatalf("counts = %v, want about 15000/5000", c)
	}
}

func TestPickSkipsTriedAndDown(t *testing.T) {
	for _, kind := range []string{config.BalancerRoundRobin, config.BalancerWeighted, config.BalancerLeastConn, config.BalancerRandom} {
		t.Run(kind, func(t *testing.T) {
			now := time.Now()
			p := newPool(t, service(kind, 1, 1, 1), Options{Now: func() time.Time { return now }})
			p.MarkDown(p.backends[1])
			for range 20 {
				var tried bitset
				tried.set(0)
				if i := p.pick(&tried, at(now), false); i != 2 {
					t.Fatalf("picked %d, want 2 (0 tried, 1 down)", i)
				}
				tried.set(2)
				if i := p.pick(&tried, at(now), false); i != -1 {
					t.Fatalf("picked %d with every backend tried or down, want -1", i)
				}
				if i := p.pick(&tried, at(now), true); i != 1 {
					t.Fatalf("picked %d allowing down backends, want 1", i)
				}
			}
			if p.backends[1].Down(now.Add(2 * time.Minute)) {
				t.Fatal("backend still down after the fail timeout")
			}
		})
	}
}

func TestBitsetBeyond64(t *testing.T) {
	weights := make([]int, 130)
	for i := range weights {
		weights[i] = 1
	}
	p := newPool(t, service(config.BalancerRoundRobin, weights...), Options{})
	tried := bitset{big: make([]uint64, 3)}
	for i := range 129 {
		tried.set(i)
	}
	if i := p.pick(&tried, at(time.Now()), false); i != 129 {
		t.Fatalf("picked %d, want 129", i)
	}
}

// listen returns a listener that counts accepted connections.
func listen(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), accepted
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDialSkipsFailedBackend(t *testing.T) {
	up, accepted := listen(t)
	down := closedAddr(t)
	svc := &config.Service{Name: "s", ConnectTimeout: time.Second, FailTimeout: time.Minute,
		Backends: []config.Backend{{Address: down, Weight: 1}, {Address: up, Weight: 1}}}
	p := newPool(t, svc, Options{})
	for range 10 {
		c, err := p.Dial(context.Background(), "tcp")
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if c.Backend.Addr != up {
			t.Fatalf("dialed %s, want %s", c.Backend.Addr, up)
		}
		if c.Backend.Active() != 1 {
			t.Fatalf("active = %d, want 1", c.Backend.Active())
		}
		c.Release()
		c.Close()
	}
	if !p.backends[0].Down(time.Now()) {
		t.Fatal("refusing backend not marked down")
	}
	if p.backends[0].Active() != 0 {
		t.Fatalf("failed backend active = %d, want 0", p.backends[0].Active())
	}
	waitFor(t, func() bool { return accepted.Load() == 10 })
}

func TestDialAllDown(t *testing.T) {
	svc := &config.Service{Name: "s", ConnectTimeout: time.Second, FailTimeout: time.Minute,
		Backends: []config.Backend{{Address: closedAddr(t), Weight: 1}, {Address: closedAddr(t), Weight: 1}}}
	p := newPool(t, svc, Options{})
	start := time.Now()
	_, err := p.Dial(context.Background(), "tcp")
	if !errors.Is(err, ErrNoBackend) {
		t.Fatalf("err = %v, want ErrNoBackend", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("took %v to give up on refused backends", d)
	}
	// Every backend is marked down now; one coming back is used at once
	// (panic mode) instead of waiting out the fail timeout.
	addr, accepted := listen(t)
	p.backends[1].Addr = addr
	c, err := p.Dial(context.Background(), "tcp")
	if err != nil {
		t.Fatalf("Dial after recovery: %v", err)
	}
	c.Release()
	c.Close()
	waitFor(t, func() bool { return accepted.Load() == 1 })
}

func TestDialContextCancelled(t *testing.T) {
	p := newPool(t, &config.Service{Name: "s", ConnectTimeout: time.Second, FailTimeout: time.Minute,
		Backends: []config.Backend{{Address: closedAddr(t), Weight: 1}}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Dial(ctx, "tcp"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if p.backends[0].Down(time.Now()) {
		t.Fatal("a cancelled dial must not mark the backend down")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, kind := range []string{config.BalancerRoundRobin, config.BalancerWeighted, config.BalancerLeastConn, config.BalancerRandom} {
		b.Run(kind, func(b *testing.B) {
			p := newPool(b, service(kind, 3, 2, 1, 1), Options{})
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				var tried bitset
				if p.pick(&tried, at(now), false) < 0 {
					b.Fatal("no pick")
				}
			}
		})
	}
}

func newPool(t testing.TB, svc *config.Service, opts Options) *Pool {
	t.Helper()
	p, err := NewPool(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
