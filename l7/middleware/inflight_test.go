package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

// ifGate is a handler that holds a request with "X-Block: ID" until
// release[ID] is closed, and reports when each one has entered.
type ifGate struct {
	entered chan struct{}
	release map[string]chan struct{} // made before any request is sent
}

func (g *ifGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Block"); id != "" {
		g.entered <- struct{}{}
		<-g.release[id]
	}
	if r.Header.Get("X-Panic") == "1" {
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write([]byte("ok"))
}

// ifReq is one request in an in_flight scenario: a request with a block
// id is held in the handler until a later step releases that id (or the
// scenario ends).
type ifReq struct {
	client  string
	key     string
	block   string
	release string // let this blocked request finish before sending
	panics  bool
	want    int // for held requests: the status once released; 0: not checked
}

func TestInFlight(t *testing.T) {
	tests := []struct {
		name  string
		cfg   config.InFlight
		steps []ifReq
	}{
		{
			name: "cap per client",
			cfg:  config.InFlight{Max: 2},
			steps: []ifReq{
				{client: "192.0.2.1", block: "a1", want: 200},
				{client: "192.0.2.1", block: "a2", want: 200},
				{client: "192.0.2.1", want: 429},
				{client: "192.0.2.2", want: 200},
				{client: "192.0.2.2", block: "b1", want: 200},
				{client: "192.0.2.1", release: "a1", want: 200},
				{client: "192.0.2.1", block: "a3", want: 200},
				{client: "192.0.2.1", want: 429},
				{client: "192.0.2.2", release: "b1", block: "b2", want: 200},
			},
		},
		{
			name: "released after a panic",
			cfg:  config.InFlight{Max: 1},
			steps: []ifReq{
				{client: "192.0.2.1", panics: true, want: 0},
				{client: "192.0.2.1", block: "a", want: 200},
				{client: "192.0.2.1", want: 429},
			},
		},
		{
			name: "header key falls back to the client",
			cfg:  config.InFlight{Max: 1, Key: "header:X-Key"},
			steps: []ifReq{
				{client: "192.0.2.1", key: "a", block: "a", want: 200},
				{client: "192.0.2.2", key: "a", want: 429},
				{client: "192.0.2.2", key: "b", want: 200},
				{client: "192.0.2.3", block: "none", want: 200},
				{client: "192.0.2.3", want: 429},
				{client: "192.0.2.4", want: 200},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := buildInFlight(&tt.cfg, trafficEnv)
			if err != nil {
				t.Fatal(err)
			}
			g := &ifGate{entered: make(chan struct{}), release: map[string]chan struct{}{}}
			for _, s := range tt.steps {
				if s.block != "" {
					g.release[s.block] = make(chan struct{})
				}
			}
			h := f.wrap(g)
			serve := func(s ifReq) (code int) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = s.client + ":1"
				if s.key != "" {
					r.Header.Set("X-Key", s.key)
				}
				if s.block != "" {
					r.Header.Set("X-Block", s.block)
				}
				if s.panics {
					r.Header.Set("X-Panic", "1")
				}
				w := httptest.NewRecorder()
				defer func() {
					if recover() != nil {
						code = 0
					}
				}()
				h.ServeHTTP(w, r)
				return w.Code
			}
			codes := make([]int, len(tt.steps)) // of held requests, written before done[i] closes
			done := map[string]chan struct{}{}
			for i, s := range tt.steps {
				if s.release != "" {
					close(g.release[s.release])
					<-done[s.release] // its count is released before the next step
					delete(done, s.release)
				}
				if s.block == "" {
					if code := serve(s); s.want != 0 && code != s.want {
						t.Fatalf("step %d: status %d, want %d", i, code, s.want)
					}
					continue
				}
				d := make(chan struct{})
				done[s.block] = d
				go func() {
					defer close(d)
					codes[i] = serve(s)
				}()
				select {
				case <-g.entered:
				case <-d:
					t.Fatalf("step %d: answered %d without reaching the handler", i, codes[i])
				case <-time.After(5 * time.Second):
					t.Fatalf("step %d: the request did not reach the handler", i)
				}
			}
			for id, d := range done { // the requests still held
				close(g.release[id])
				<-d
			}
			for i, s := range tt.steps {
				if s.block != "" && s.want != 0 && codes[i] != s.want {
					t.Errorf("step %d: status %d, want %d", i, codes[i], s.want)
				}
			}
			if n := f.keys(); n != 0 {
				t.Errorf("%d keys tracked after every request ended, want 0", n)
			}
		})
	}
}

func TestInFlightConcurrent(t *testing.T) {
	// Hammer one key from many goroutines: never more than Max inside.
	f, err := buildInFlight(&config.InFlight{Max: 3}, trafficEnv)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inside, peak := 0, 0
	h := f.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		inside++
		peak = max(peak, inside)
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		inside--
		mu.Unlock()
	}))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = "192.0.2.1:1"
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d requests inside at once, want at most 3", peak)
	}
	if n := f.keys(); n != 0 {
		t.Fatalf("%d keys tracked, want 0", n)
	}
}

func TestInFlightConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *config.InFlight
		want string
	}{
		{"missing block", nil, "missing block"},
		{"max missing", &config.InFlight{}, "max must be greater than 0"},
		{"unknown key", &config.InFlight{Max: 1, Key: "path"}, `unknown key "path"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newInFlight(&config.Middleware{Kind: config.MWInFlight, InFlight: tt.cfg}, trafficEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func BenchmarkInFlight(b *testing.B) {
	f, err := buildInFlight(&config.InFlight{Max: 100}, Env{ClientIP: remoteIP})
	if err != nil {
		b.Fatal(err)
	}
	h := f.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		w := &trafficBenchWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}
