package middleware

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync"

	"github.com/proxynow/proxynow/config"
)

// in_flight counts the requests of each key being served and refuses one
// more than Max with 429. A key's count is removed when it drops to zero,
// so the table holds only keys with requests in progress: its size is
// bounded by the server's concurrency, not by the number of clients seen.
// The count is released when the wrapped handler returns, also when it
// panics (httputil.ReverseProxy panics with http.ErrAbortHandler).

// ifRetryAfter is the Retry-After of a refusal: a slot frees when one
// request of the key ends, which no clock predicts, so the hint is the
// shortest whole second. Shared by every refusal (never modified).
var ifRetryAfter = []string{"1"}

// inFlight is one in_flight middleware, shared by the routes listing it.
type inFlight interface {
	wrap(next http.Handler) http.Handler
	keys() int // tracked keys, for tests
}

func newInFlight(m *config.Middleware, env Env) (Middleware, error) {
	f, err := buildInFlight(m.InFlight, env)
	if err != nil {
		return nil, err
	}
	return f.wrap, nil
}

func buildInFlight(c *config.InFlight, env Env) (inFlight, error) {
	if c == nil {
		return nil, errors.New("in_flight: missing block")
	}
	if c.Max <= 0 {
		return nil, fmt.Errorf("in_flight: max must be greater than 0, got %d", c.Max)
	}
	key, err := parseTrafficKey(c.Key, env)
	if err != nil {
		return nil, fmt.Errorf("in_flight: %w", err)
	}
	seed := maphash.MakeSeed()
	switch {
	case key.addr != nil:
		return newIFShards(c.Max, key.addr, trafficHashAddr(seed), env.OnRefuse), nil
	case key.hdr != nil:
		return newIFShards(c.Max, key.hdr, trafficHashHdr(seed), env.OnRefuse), nil
	}
	return newIFShards(c.Max, key.str, trafficHashString(seed), env.OnRefuse), nil
}

type ifShards[K comparable] struct {
	max    int
	key    func(*http.Request) K
	hash   func(K) uint64
	shards [trafficShards]ifShard[K]
	// onRefuse is Env.OnRefuse.
	onRefuse func()
}

type ifShard[K comparable] struct {
	mu     sync.Mutex
	counts map[K]int
	_      [64]byte // keep neighbouring shards' mutexes off one cache line
}

func newIFShards[K comparable](maxN int, key func(*http.Request) K, hash func(K) uint64, onRefuse func()) *ifShards[K] {
	t := &ifShards[K]{max: maxN, key: key, hash: hash, onRefuse: onRefuse}
	for i := range t.shards {
		t.shards[i].counts = make(map[K]int)
	}
	return t
}

func (t *ifShards[K]) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := t.key(r)
		s := &t.shards[t.hash(k)%trafficShards]
		if !s.acquire(k, t.max) {
			if t.onRefuse != nil {
				t.onRefuse()
			}
			w.Header()["Retry-After"] = ifRetryAfter
			trafficRefuse(w, http.StatusTooManyRequests)
			return
		}
		defer s.release(k)
		next.ServeHTTP(w, r)
	})
}

func (s *ifShard[K]) acquire(k K, maxN int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counts[k]
	if n >= maxN {
		return false
	}
	s.counts[k] = n + 1
	return true
}

func (s *ifShard[K]) release(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.counts[k]; n > 1 {
		s.counts[k] = n - 1
	} else {
		delete(s.counts, k)
	}
}

func (t *ifShards[K]) keys() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.counts)
		s.mu.Unlock()
	}
	return n
}

var (
	_ inFlight = (*ifShards[netip.Addr])(nil)
	_ inFlight = (*ifShards[string])(nil)
	_ inFlight = (*ifShards[trafficHdrKey])(nil)
)
