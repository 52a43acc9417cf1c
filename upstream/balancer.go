package upstream

import (
	"math/rand/v2"

	"github.com/proxynow/proxynow/config"
)

// pick returns the index of the next backend, or -1. It never returns a
// backend in tried, and returns a backend marked down only when allowDown.
func (p *Pool) pick(tried *bitset, now *lazyNow, allowDown bool) int {
	ok := func(i int) bool {
		b := p.backends[i]
		return !tried.has(i) && b.Healthy() && (allowDown || !b.down(now))
	}
	switch p.kind {
	case config.BalancerWeighted:
		return p.pickWeighted(ok)
	case config.BalancerLeastConn:
		return p.pickLeastConn(ok)
	case config.BalancerRandom:
		return p.pickRandom(ok)
	default:
		return p.pickRoundRobin(ok)
	}
}

func (p *Pool) pickRoundRobin(ok func(int) bool) int {
	n := len(p.backends)
	start := int(p.rr.Add(1)-1) % n
	for k := range n {
		if i := (start + k) % n; ok(i) {
			return i
		}
	}
	return -1
}

// pickWeighted is nginx's smooth weighted round robin: every eligible
// backend gains its weight, the richest is chosen and pays the total. Over
// any window of sum(weights) picks each backend is chosen weight times, and
// picks are interleaved rather than bunched (5,1,1 gives a a b a c a a).
func (p *Pool) pickWeighted(ok func(int) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0
	for i, b := range p.backends {
		if !ok(i) {
			continue
		}
		b.current += b.Weight
		total += b.Weight
		if best < 0 || b.current > p.backends[best].current {
			best = i
		}
	}
	if best >= 0 {
		p.backends[best].current -= total
	}
	return best
}

// pickLeastConn chooses the backend with the fewest active connections per
// unit of weight; ties go round robin so idle pools still spread load.
func (p *Pool) pickLeastConn(ok func(int) bool) int {
	n := len(p.backends)
	start := int(p.rr.Add(1)-1) % n
	best := -1
	var bestActive, bestWeight int64
	for k := range n {
		i := (start + k) % n
		if !ok(i) {
			continue
		}
		b := p.backends[i]
		a, w := b.active.Load(), int64(b.Weight)
		if best < 0 || a*bestWeight < bestActive*w {
			best, bestActive, bestWeight = i, a, w
		}
	}
	return best
}

// pickRandom chooses among eligible backends with probability proportional
// to weight.
func (p *Pool) pickRandom(ok func(int) bool) int {
	total := 0
	for i, b := range p.backends {
		if ok(i) {
			total += b.Weight
		}
	}
	if total == 0 {
		return -1
	}
	r := rand.IntN(total)
	for i, b := range p.backends {
		if !ok(i) {
			continue
		}
		if r < b.Weight {
			return i
		}
		r -= b.Weight
	}
	return -1
}
