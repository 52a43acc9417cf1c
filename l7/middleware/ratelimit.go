package middleware

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
)

// rate_limit is a token bucket per key, kept exactly in integers: a
// bucket's credit is counted in "token·ns/Period" units, so one token is
// Period units, the bucket holds Burst·Period, and it refills by Average
// units per nanosecond. No float rounding can let through a request early.
//
// Buckets live in trafficShards shards, each a map plus an LRU list under
// its own mutex. MaxKeys is split among the shards (their capacities add up
// to exactly MaxKeys), and a full shard recycles its least recently used
// bucket for the new key: memory is bounded, nothing runs in the
// background, and a lookup of an existing key allocates nothing. The
// eviction is LRU within a shard, which approximates a global LRU. An
// evicted key starts again with a full bucket; MaxKeys should therefore
// exceed the number of clients active within Burst/Average·Period.
//
// Every response carries RateLimit-Limit (Burst), RateLimit-Remaining
// (whole tokens left) and RateLimit-Reset (seconds until the bucket is full
// again) of draft-ietf-httpapi-ratelimit-headers; a refused request gets
// 429 with Retry-After, the seconds until one token is back, rounded up
// (RFC 9110 §10.2.3).

// rlTableLimit bounds the tables of pre-formatted header values.
const rlTableLimit = 1024

// Canonical header names, assigned to the header map directly.
const (
	rlHeaderLimit     = "Ratelimit-Limit"
	rlHeaderRemaining = "Ratelimit-Remaining"
	rlHeaderReset     = "Ratelimit-Reset"
)

// rateLimit is one rate_limit middleware; its buckets are shared by every
// route that lists it.
type rateLimit struct {
	now   func() time.Time // the clock; tests replace it
	epoch time.Time

	period   int64 // ns; the credit of one token
	average  int64 // credit units refilled per ns
	capacity int64 // Burst·Period
	fullTime int64 // ns to refill an empty bucket

	table    rlTable
	onRefuse func() // Env.OnRefuse

	// Pre-formatted header values. They are shared, read-only slices of
	// one element: net/http and httputil only replace or append to header
	// values, which never writes into them.
	limitVal  []string
	remaining [][]string // by whole tokens left, when Burst <= rlTableLimit
	reset     [][]string // by seconds, when the longest reset <= rlTableLimit
}

// rlTable is the per-key bucket table, generic over the key type.
type rlTable interface {
	take(r *http.Request, rl *rateLimit, now int64) (ok bool, credit int64)
	keys() int
}

func newRateLimit(m *config.Middleware, env Env) (Middleware, error) {
	rl, err := buildRateLimit(m.RateLimit, env)
	if err != nil {
		return nil, err
	}
	return rl.wrap, nil
}

// buildRateLimit applies the defaults documented on config.RateLimit.
func buildRateLimit(c *config.RateLimit, env Env) (*rateLimit, error) {
	if c == nil {
		return nil, errors.New("rate_limit: missing block")
	}
	if c.Average <= 0 {
		return nil, fmt.Errorf("rate_limit: average must be greater than 0, got %d", c.Average)
	}
	burst, period, maxKeys := c.Burst, c.Period, c.MaxKeys
	if burst == 0 {
		burst = c.Average
	}
	if period == 0 {
		period = config.DefaultRateLimitPeriod
	}
	if maxKeys == 0 {
		maxKeys = config.DefaultRateLimitMaxKeys
	}
	switch {
	case burst < 0:
		return nil, fmt.Errorf("rate_limit: burst must be at least 1, got %d", burst)
	case period < 0:
		return nil, fmt.Errorf("rate_limit: period must be positive, got %s", period)
	case maxKeys < 0:
		return nil, fmt.Errorf("rate_limit: max_keys must be at least 1, got %d", maxKeys)
	}
	// Keep Burst·Period + Average far from overflowing int64.
	if hi, lo := bits.Mul64(uint64(burst), uint64(period)); hi != 0 || lo > math.MaxInt64/4 || c.Average > math.MaxInt32 {
		return nil, fmt.Errorf("rate_limit: burst %d × period %s is too large", burst, period)
	}
	key, err := parseTrafficKey(c.Key, env)
	if err != nil {
		return nil, fmt.Errorf("rate_limit: %w", err)
	}
	rl := &rateLimit{
		now:      time.Now,
		epoch:    time.Now(),
		period:   int64(period),
		average:  int64(c.Average),
		capacity: int64(burst) * int64(period),
		limitVal: []string{strconv.Itoa(burst)},
		onRefuse: env.OnRefuse,
	}
	rl.fullTime = trafficCeilDiv(rl.capacity, rl.average)
	seed := maphash.MakeSeed()
	switch {
	case key.addr != nil:
		rl.table = newRLShards(maxKeys, key.addr, trafficHashAddr(seed))
	case key.hdr != nil:
		rl.table = newRLShards(maxKeys, key.hdr, trafficHashHdr(seed))
	default:
		rl.table = newRLShards(maxKeys, key.str, trafficHashString(seed))
	}
	if burst <= rlTableLimit {
		rl.remaining = rlValues(burst)
	}
	if n := trafficCeilDiv(rl.fullTime, int64(time.Second)); n <= rlTableLimit {
		rl.reset = rlValues(int(n))
	}
	return rl, nil
}

// rlValues formats 0..n as one-element, full-capacity slices.
func rlValues(n int) [][]string {
	vs := make([][]string, n+1)
	for i := range vs {
		vs[i] = []string{strconv.Itoa(i)}
	}
	return vs
}

func (rl *rateLimit) wrap(next http.Handler) http.Handler {
	return &rateLimitHandler{rl: rl, next: next}
}

type rateLimitHandler struct {
	rl   *rateLimit
	next http.Handler
}

func (h *rateLimitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rl := h.rl
	now := max(int64(rl.now().Sub(rl.epoch)), 0)
	ok, credit := rl.table.take(r, rl, now)

	hdr := w.Header()
	hdr[rlHeaderLimit] = rl.limitVal
	hdr[rlHeaderRemaining] = rlValue(rl.remaining, credit/rl.period)
	resetSec := trafficCeilDiv(trafficCeilDiv(rl.capacity-credit, rl.average), int64(time.Second))
	hdr[rlHeaderReset] = rlValue(rl.reset, resetSec)
	if !ok {
		wait := trafficCeilDiv(rl.period-credit, rl.average)
		hdr.Set("Retry-After", strconv.FormatInt(trafficCeilDiv(wait, int64(time.Second)), 10))
		if rl.onRefuse != nil {
			rl.onRefuse()
		}
		trafficRefuse(w, http.StatusTooManyRequests)
		return
	}
	h.next.ServeHTTP(w, r)
}

// rlValue is the pre-formatted value of n, or a new one.
func rlValue(table [][]string, n int64) []string {
	if n >= 0 && n < int64(len(table)) {
		return table[n]
	}
	return []string{strconv.FormatInt(n, 10)}
}

// rlShards is the sharded bucket table for keys of type K.
type rlShards[K comparable] struct {
	key    func(*http.Request) K
	hash   func(K) uint64
	shards []rlShard[K]
}

type rlShard[K comparable] struct {
	mu         sync.Mutex
	buckets    map[K]*rlBucket[K]
	head, tail *rlBucket[K] // most and least recently used
	max        int
	_          [64]byte // keep neighbouring shards' mutexes off one cache line
}

type rlBucket[K comparable] struct {
	key        K
	credit     int64 // token·ns/Period units, 0..capacity
	last       int64 // ns since epoch of the last refill
	prev, next *rlBucket[K]
}

func newRLShards[K comparable](maxKeys int, key func(*http.Request) K, hash func(K) uint64) *rlShards[K] {
	n := min(trafficShards, maxKeys)
	t := &rlShards[K]{key: key, hash: hash, shards: make([]rlShard[K], n)}
	for i := range t.shards {
		t.shards[i].max = maxKeys / n
		if i < maxKeys%n {
			t.shards[i].max++
		}
		t.shards[i].buckets = make(map[K]*rlBucket[K])
	}
	return t
}

// take refills the key's bucket to now and takes one token if there is
// one. credit is what is left after.
func (t *rlShards[K]) take(r *http.Request, rl *rateLimit, now int64) (bool, int64) {
	k := t.key(r)
	s := &t.shards[t.hash(k)%uint64(len(t.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.get(k, rl.capacity, now)
	if elapsed := now - b.last; elapsed > 0 {
		if elapsed >= rl.fullTime {
			b.credit = rl.capacity
		} else {
			b.credit = min(rl.capacity, b.credit+elapsed*rl.average)
		}
		b.last = now
	}
	if b.credit < rl.period {
		return false, b.credit
	}
	b.credit -= rl.period
	return true, b.credit
}

func (t *rlShards[K]) keys() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// get returns k's bucket as the most recently used, making a full one if
// k is new (recycling the least recently used when the shard is full).
// The shard is locked.
func (s *rlShard[K]) get(k K, capacity, now int64) *rlBucket[K] {
	if b, ok := s.buckets[k]; ok {
		if b != s.head {
			s.unlink(b)
			s.pushFront(b)
		}
		return b
	}
	var b *rlBucket[K]
	if len(s.buckets) >= s.max {
		b = s.tail
		s.unlink(b)
		delete(s.buckets, b.key)
		*b = rlBucket[K]{}
	} else {
		b = new(rlBucket[K])
	}
	k = ownKey(k)
	b.key, b.credit, b.last = k, capacity, now
	s.pushFront(b)
	s.buckets[k] = b
	return b
}

// ownKey is k as a bucket may keep it. A string key (a header's value, the
// host) is a substring of the request's whole head, which the bucket would
// otherwise keep alive for as long as it lives: it is copied.
func ownKey[K comparable](k K) K {
	switch v := any(k).(type) {
	case string:
		return any(strings.Clone(v)).(K)
	case trafficHdrKey:
		v.value = strings.Clone(v.value)
		return any(v).(K)
	}
	return k
}

func (s *rlShard[K]) unlink(b *rlBucket[K]) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		s.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		s.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (s *rlShard[K]) pushFront(b *rlBucket[K]) {
	b.next = s.head
	if s.head != nil {
		s.head.prev = b
	}
	s.head = b
	if s.tail == nil {
		s.tail = b
	}
}

var (
	_ rlTable      = (*rlShards[netip.Addr])(nil)
	_ rlTable      = (*rlShards[string])(nil)
	_ rlTable      = (*rlShards[trafficHdrKey])(nil)
	_ http.Handler = (*rateLimitHandler)(nil)
)
