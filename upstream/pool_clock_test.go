package upstream

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// Pick asks the pool's own clock (Options.Now, which MarkDown used) whether
// a backend marked down still is, once per pick and only when some backend
// was marked down: the real time never decides, through the balancers and
// the sticky path alike.
func TestPickDownUsesPoolClock(t *testing.T) {
	kinds := []string{config.BalancerRoundRobin, config.BalancerWeighted, config.BalancerLeastConn,
		config.BalancerRandom, config.BalancerP2C, config.BalancerHash}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			// Far from the real time either way: a real clock read would
			// find backend 0 up long ago (or down for years).
			var fake atomic.Int64
			fake.Store(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			var reads atomic.Int64
			p := newPool(t, service(kind, 1, 1), Options{Now: func() time.Time {
				reads.Add(1)
				return time.Unix(0, fake.Load())
			}})
			pick := func(k *Key) int {
				t.Helper()
				var tried Tried
				b, err := p.Pick(k, &tried)
				if err != nil {
					t.Fatal(err)
				}
				p.Done(b)
				for i, x := range p.backends {
					if x == b {
						return i
					}
				}
				t.Fatal("picked a backend not in the pool")
				return -1
			}
			sticky0 := &Key{Sticky: p.backends[0].id, Hash: 1}
			for range 20 {
				pick(nil)
				pick(sticky0)
			}
			if n := reads.Load(); n != 0 {
				t.Fatalf("%d clock reads for picks with no backend marked down, want 0", n)
			}

			p.MarkDown(p.backends[0])
			reads.Store(0)
			for i := range 20 {
				if got := pick(nil); got != 1 {
					t.Fatalf("pick %d: backend %d, want 1 (0 is down)", i, got)
				}
				if got := pick(sticky0); got != 1 {
					t.Fatalf("sticky pick %d: backend %d, want 1 (0 is down)", i, got)
				}
			}
			if n := reads.Load(); n < 1 || n > 40 {
				t.Fatalf("%d clock reads for 40 picks, want 1 to 40 (at most one each)", n)
			}

			fake.Add(int64(time.Minute - time.Nanosecond)) // the fail timeout, less 1 ns
			if got := pick(sticky0); got != 1 {
				t.Fatalf("sticky pick 1 ns before the fail timeout ends: backend %d, want 1", got)
			}
			fake.Add(int64(time.Nanosecond))
			if got := pick(sticky0); got != 0 {
				t.Fatalf("sticky pick once the fail timeout ended: backend %d, want 0", got)
			}
			seen := map[int]bool{}
			for i := range 200 {
				seen[pick(&Key{Hash: uint64(i) * 0x9e3779b97f4a7c15})] = true
			}
			if !seen[0] {
				t.Fatal("backend 0 never picked after its fail timeout")
			}
		})
	}
}

// at is a lazyNow that reads t (the tests' pick clock).
func at(t time.Time) *lazyNow { return &lazyNow{ns: t.UnixNano()} }
