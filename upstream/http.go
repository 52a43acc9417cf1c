package upstream

import (
	"errors"
	"math"
	"math/rand/v2"

	"github.com/proxynow/proxynow/config"
)

// ErrNoHealthy is returned by Pick when every backend not yet tried is
// failing its health check.
var ErrNoHealthy = errors.New("no healthy backend")

// Key is what a request offers the balancer.
type Key struct {
	// Hash is the request's hash for the hash balancer (the caller hashes
	// the configured hash_key: client IP, path, host, a header or cookie).
	Hash uint64
	// NoHash says the request has no value for the hash_key (a header or
	// cookie it does not send): it is balanced round robin, as HAProxy's
	// balance hdr() does, rather than every such request going to the
	// one backend that owns the empty key.
	NoHash bool
	// Sticky is the backend ID from the request's sticky cookie, if any.
	Sticky string
}

// Tried is the set of backends one request has tried; the zero value is
// empty and does not allocate for pools of up to 64 backends.
type Tried struct{ set bitset }

func (t *Tried) add(p *Pool, i int) {
	if t.set.big == nil && len(p.backends) > 64 {
		t.set.big = make([]uint64, (len(p.backends)+63)/64)
	}
	t.set.set(i)
}

// Pick chooses the backend for one HTTP attempt and counts it in flight;
// the caller calls Done when the attempt ends. A sticky key naming an
// eligible backend wins; otherwise the service's balancer decides. Backends
// failing active health checks are never chosen; backends marked down by a
// recent failure only when nothing else is left.
func (p *Pool) Pick(k *Key, tried *Tried) (*Backend, error) {
	now := &lazyNow{now: p.now}
	i := -1
	if k != nil && k.Sticky != "" {
		i = p.pickSticky(k.Sticky, &tried.set, now)
	}
	if i < 0 {
		i = p.pickHTTP(k, &tried.set, now, false)
	}
	if i < 0 {
		i = p.pickHTTP(k, &tried.set, now, true)
	}
	if i < 0 {
		return nil, ErrNoHealthy
	}
	tried.add(p, i)
	b := p.backends[i]
	b.active.Add(1)
	return b, nil
}

// Done ends an attempt that Pick started.
func (p *Pool) Done(b *Backend) { b.active.Add(-1) }

func (p *Pool) pickSticky(id string, tried *bitset, now *lazyNow) int {
	for i, b := range p.backends {
		if b.id == id {
			if !tried.has(i) && b.Healthy() && !b.down(now) {
				return i
			}
			return -1
		}
	}
	return -1
}

func (p *Pool) pickHTTP(k *Key, tried *bitset, now *lazyNow, allowDown bool) int {
	ok := func(i int) bool {
		b := p.backends[i]
		return !tried.has(i) && b.Healthy() && (allowDown || !b.down(now))
	}
	switch p.kind {
	case config.BalancerP2C:
		return p.pickP2C(ok)
	case config.BalancerHash:
		var h uint64
		if k != nil {
			if k.NoHash {
				return p.pickRoundRobin(ok)
			}
			h = k.Hash
		}
		return p.pickRendezvous(h, ok)
	}
	return p.pick(tried, now, allowDown)
}

// pickP2C is the power of two choices: of two random eligible backends, the
// one with fewer requests in flight per unit of weight.
func (p *Pool) pickP2C(ok func(int) bool) int {
	a := p.randomEligible(ok, -1)
	if a < 0 {
		return -1
	}
	b := p.randomEligible(ok, a)
	if b < 0 {
		return a
	}
	ba, bb := p.backends[a], p.backends[b]
	if ba.active.Load()*int64(bb.Weight) <= bb.active.Load()*int64(ba.Weight) {
		return a
	}
	return b
}

// randomEligible returns a random eligible backend other than not: a few
// random probes, then a scan from a random start so that a scarce eligible
// backend is still found.
func (p *Pool) randomEligible(ok func(int) bool, not int) int {
	n := len(p.backends)
	for range 4 {
		if i := rand.IntN(n); i != not && ok(i) {
			return i
		}
	}
	start := rand.IntN(n)
	for k := range n {
		if i := (start + k) % n; i != not && ok(i) {
			return i
		}
	}
	return -1
}

// pickRendezvous is highest-random-weight hashing: each backend scores
// mix(key, backend); the highest eligible score wins. Removing one of n
// backends moves only the keys it owned (1/n of them), and weights scale
// the score (weighted rendezvous: -w/ln(u)).
func (p *Pool) pickRendezvous(key uint64, ok func(int) bool) int {
	best, bestScore := -1, 0.0
	for i, b := range p.backends {
		if !ok(i) {
			continue
		}
		h := mix64(key ^ b.idHash)
		// u in (0,1): 53 random bits, never 0.
		u := (float64(h>>11) + 0.5) / (1 << 53)
		score := float64(b.Weight) / -math.Log(u)
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// mix64 is SplitMix64's finaliser: a cheap, well-spread 64-bit mix.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
