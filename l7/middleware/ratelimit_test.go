package middleware

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// trafficClock is a clock for tests, advanced by hand.
type trafficClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *trafficClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *trafficClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// trafficEnv resolves the client from RemoteAddr as given, without
// unmapping, so that the middlewares' own unmapping is tested.
var trafficEnv = Env{ClientIP: func(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}}

// testRateLimit builds a rate limiter on a frozen clock.
func testRateLimit(t testing.TB, c config.RateLimit) (*rateLimit, *trafficClock, http.Handler) {
	t.Helper()
	rl, err := buildRateLimit(&c, trafficEnv)
	if err != nil {
		t.Fatal(err)
	}
	clk := &trafficClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	rl.now, rl.epoch = clk.Now, clk.t
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return rl, clk, rl.wrap(ok)
}

// rlStep is one request of a rate limit scenario, after advancing the
// clock by after. Empty expectations are not checked.
type rlStep struct {
	after     time.Duration
	client    string // client address
	key       string // value of the X-Key header, "-" for none, `""` for empty
	host      string
	want      int
	remaining string
	reset     string
	retry     string
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name  string
		cfg   config.RateLimit
		steps []rlStep
	}{
		{
			name: "burst then refuse",
			cfg:  config.RateLimit{Average: 10, Burst: 3},
			steps: []rlStep{
				{want: 200, remaining: "2", reset: "1"},
				{want: 200, remaining: "1"},
				{want: 200, remaining: "0"},
				{want: 429, remaining: "0", retry: "1", reset: "1"},
			},
		},
		{
			name: "burst defaults to average",
			cfg:  config.RateLimit{Average: 2},
			steps: []rlStep{
				{want: 200}, {want: 200}, {want: 429},
			},
		},
		{
			name: "refills at the configured rate",
			cfg:  config.RateLimit{Average: 10, Burst: 1},
			steps: []rlStep{
				{want: 200},
				{want: 429},
				{after: 99 * time.Millisecond, want: 429},
				{after: time.Millisecond, want: 200},
				{after: 50 * time.Millisecond, want: 429},
				{after: 50 * time.Millisecond, want: 200},
			},
		},
		{
			name: "refill of a period not divisible by average is exact",
			cfg:  config.RateLimit{Average: 3, Burst: 1},
			steps: []rlStep{
				{want: 200},
				{after: 333 * time.Millisecond, want: 429},
				{after: time.Millisecond, want: 200},
			},
		},
		{
			name: "steady rate over one period",
			cfg:  config.RateLimit{Average: 5, Burst: 1},
			steps: []rlStep{
				{want: 200},
				{after: 200 * time.Millisecond, want: 200},
				{after: 200 * time.Millisecond, want: 200},
				{after: 200 * time.Millisecond, want: 200},
				{after: 200 * time.Millisecond, want: 200},
				{want: 429},
			},
		},
		{
			name: "period of a minute",
			cfg:  config.RateLimit{Average: 2, Burst: 2, Period: time.Minute},
			steps: []rlStep{
				{want: 200, reset: "30"},
				{want: 200, remaining: "0", reset: "60"},
				{want: 429, retry: "30"},
				{after: 29 * time.Second, want: 429, retry: "1"},
				{after: time.Second, want: 200},
			},
		},
		{
			name: "retry-after rounds up",
			cfg:  config.RateLimit{Average: 1, Burst: 1, Period: 2500 * time.Millisecond},
			steps: []rlStep{
				{want: 200},
				{want: 429, retry: "3"},
				{after: 2 * time.Second, want: 429, retry: "1"},
			},
		},
		{
			name: "a long idle fills no more than burst",
			cfg:  config.RateLimit{Average: 10, Burst: 2},
			steps: []rlStep{
				{want: 200},
				{after: time.Hour, want: 200, remaining: "1", reset: "1"},
				{want: 200},
				{want: 429},
			},
		},
		{
			name: "client addresses are isolated",
			cfg:  config.RateLimit{Average: 1, Burst: 1},
			steps: []rlStep{
				{client: "192.0.2.1", want: 200},
				{client: "192.0.2.1", want: 429},
				{client: "192.0.2.2", want: 200},
				{client: "2001:db8::1", want: 200},
				{client: "2001:db8::1", want: 429},
				{client: "192.0.2.2", want: 429},
			},
		},
		{
			// Without the header (or with it empty) a request is keyed by
			// its client address: it is limited, per client, not in one
			// bucket that one client could drain for every other.
			name: "header key isolates values and falls back to the client",
			cfg:  config.RateLimit{Average: 1, Burst: 1, Key: "header:X-Key"},
			steps: []rlStep{
				{client: "192.0.2.1", key: "alice", want: 200},
				{client: "192.0.2.2", key: "alice", want: 429},
				{client: "192.0.2.1", key: "bob", want: 200},
				{client: "192.0.2.1", key: "-", want: 200},
				{client: "192.0.2.2", key: "-", want: 200},
				{client: "192.0.2.1", key: "-", want: 429},
				{client: "192.0.2.2", key: `""`, want: 429},
				{client: "192.0.2.3", key: `""`, want: 200},
				{client: "192.0.2.4", key: "192.0.2.3", want: 200}, // a value is not an address
				{client: "192.0.2.4", key: "-", want: 200},
			},
		},
		{
			name: "host key ignores port and case",
			cfg:  config.RateLimit{Average: 1, Burst: 1, Key: config.KeyHost},
			steps: []rlStep{
				{host: "example.com", want: 200},
				{host: "EXAMPLE.com:8080", want: 429},
				{host: "other.example", want: 200},
				{host: "[2001:db8::1]:443", want: 200},
				{host: "[2001:DB8::1]", want: 429},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, clk, h := testRateLimit(t, tt.cfg)
			for i, s := range tt.steps {
				clk.Advance(s.after)
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if s.client == "" {
					s.client = "192.0.2.1"
				}
				r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(s.client), 1234).String()
				switch s.key {
				case "-", "":
				case `""`:
					r.Header.Set("X-Key", "")
				default:
					r.Header.Set("X-Key", s.key)
				}
				if s.host != "" {
					r.Host = s.host
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != s.want {
					t.Fatalf("step %d: status %d, want %d", i, w.Code, s.want)
				}
				for name, want := range map[string]string{"RateLimit-Remaining": s.remaining, "RateLimit-Reset": s.reset, "Retry-After": s.retry} {
					if got := w.Header().Get(name); want != "" && got != want {
						t.Errorf("step %d: %s %q, want %q", i, name, got, want)
					}
				}
			}
		})
	}
}

func TestRateLimitHeaders(t *testing.T) {
	_, _, h := testRateLimit(t, config.RateLimit{Average: 5, Burst: 1, Period: 10 * time.Second})
	for _, tt := range []struct {
		name   string
		status int
		want   map[string]string
		body   string
	}{
		{
			name:   "allowed",
			status: 200,
			want:   map[string]string{"RateLimit-Limit": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "2", "Retry-After": ""},
			body:   "ok",
		},
		{
			name:   "refused",
			status: 429,
			want: map[string]string{"RateLimit-Limit": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "2", "Retry-After": "2",
				"Content-Type": "text/plain; charset=utf-8", "Content-Length": "22"},
			body: "429 Too Many Requests\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body, tt.status, tt.body)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRateLimitEviction(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  string
		req  func(i int) *http.Request
	}{
		{"client_ip", config.KeyClientIP, func(i int) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)
			return r
		}},
		{"header", "header:X-Key", func(i int) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-Key", strconv.Itoa(i))
			return r
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rl, _, h := testRateLimit(t, config.RateLimit{Average: 1, Burst: 1, Key: tt.key, MaxKeys: 100})
			for i := range 10000 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, tt.req(i))
				if w.Code != 200 {
					t.Fatalf("request %d: %d, want 200 (a new key has a full bucket)", i, w.Code)
				}
				if n := rl.table.keys(); n > 100 {
					t.Fatalf("after %d keys: %d tracked, want at most 100", i+1, n)
				}
			}
			if n := rl.table.keys(); n != 100 {
				t.Errorf("%d keys tracked, want 100", n)
			}
		})
	}
}

func TestRateLimitShardLRU(t *testing.T) {
	s := &rlShard[string]{max: 2, buckets: map[string]*rlBucket[string]{}}
	for _, k := range []string{"a", "b", "a", "c"} {
		s.get(k, 1, 0)
	}
	if _, ok := s.buckets["b"]; ok || len(s.buckets) != 2 {
		t.Fatalf("tracked %v, want a and c: b was the least recently used", s.buckets)
	}
	if s.head.key != "c" || s.tail.key != "a" || s.head.next != s.tail || s.tail.prev != s.head {
		t.Fatalf("LRU list head %q tail %q, want c, a", s.head.key, s.tail.key)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	// On a frozen clock, exactly Burst requests of one key get through
	// however many goroutines race for them.
	_, _, h := testRateLimit(t, config.RateLimit{Average: 1, Burst: 50})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if i%2 == 0 {
					r.RemoteAddr = "192.0.2.1:1"
				} else {
					r.RemoteAddr = fmt.Sprintf("198.51.100.%d:1", g)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code == 200 && i%2 == 0 {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d requests of one key allowed, want the burst of 50", n)
	}
}

func TestRateLimitConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  config.RateLimit
		want string
	}{
		{"average missing", config.RateLimit{}, "average must be greater than 0"},
		{"negative burst", config.RateLimit{Average: 1, Burst: -1}, "burst must be at least 1"},
		{"negative period", config.RateLimit{Average: 1, Period: -time.Second}, "period must be positive"},
		{"unknown key", config.RateLimit{Average: 1, Key: "cookie:x"}, `unknown key "cookie:x"`},
		{"empty header name", config.RateLimit{Average: 1, Key: "header:"}, "unknown key"},
		{"overflow", config.RateLimit{Average: 1, Burst: 1 << 30, Period: 1000 * time.Hour}, "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRateLimit(&config.Middleware{Kind: config.MWRateLimit, RateLimit: &tt.cfg}, trafficEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// trafficBenchWriter is a ResponseWriter reused across iterations.
type trafficBenchWriter struct {
	h    http.Header
	code int
}

func (w *trafficBenchWriter) Header() http.Header         { return w.h }
func (w *trafficBenchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *trafficBenchWriter) WriteHeader(code int)        { w.code = code }

func BenchmarkRateLimit(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  string
		set  func(r *http.Request)
	}{
		{"client_ip", config.KeyClientIP, func(*http.Request) {}},
		{"header", "header:X-Api-Key", func(r *http.Request) { r.Header.Set("X-Api-Key", "k-123") }},
	} {
		b.Run(bc.name+"/existing_key", func(b *testing.B) {
			rl, err := buildRateLimit(&config.RateLimit{Average: 1000, Burst: 1000, Key: bc.key}, Env{ClientIP: remoteIP})
			if err != nil {
				b.Fatal(err)
			}
			// Each request finds one token refilled: always allowed.
			var tick atomic.Int64
			epoch := time.Now()
			rl.now, rl.epoch = func() time.Time { return epoch.Add(time.Duration(tick.Add(int64(time.Millisecond)))) }, epoch
			h := rl.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = "192.0.2.1:1234"
				bc.set(r)
				w := &trafficBenchWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
			})
		})
	}
	b.Run("client_ip/many_keys", func(b *testing.B) {
		rl, err := buildRateLimit(&config.RateLimit{Average: 1000, Burst: 1000, MaxKeys: 1 << 16}, Env{ClientIP: remoteIP})
		if err != nil {
			b.Fatal(err)
		}
		h := rl.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		reqs := make([]*http.Request, 1<<12)
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
			reqs[i].RemoteAddr = fmt.Sprintf("10.0.%d.%d:1", i>>8, i&255)
		}
		w := &trafficBenchWriter{h: http.Header{}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, reqs[i&(len(reqs)-1)])
			i++
		}
	})
}
