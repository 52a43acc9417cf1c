package middleware

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/proxynow/proxynow/config"
)

// TestOnRefuse checks that rate_limit and in_flight report each refusal
// (the rate-limited requests metric) and nothing else does.
func TestOnRefuse(t *testing.T) {
	var refused atomic.Int64
	env := Env{OnRefuse: func() { refused.Add(1) }}
	rl, err := Build(&config.Middleware{Name: "rl", Kind: config.MWRateLimit,
		RateLimit: &config.RateLimit{Average: 1, Burst: 2, Period: 3600e9}}, env)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := rl(ok)
	codes := map[int]int{}
	for range 5 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		codes[w.Code]++
	}
	if codes[200] != 2 || codes[429] != 3 || refused.Load() != 3 {
		t.Errorf("rate_limit: codes %v, OnRefuse called %d times; want 2×200, 3×429, 3", codes, refused.Load())
	}

	refused.Store(0)
	fl, err := Build(&config.Middleware{Name: "fl", Kind: config.MWInFlight, InFlight: &config.InFlight{Max: 1}}, env)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	slow := fl(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	var wg sync.WaitGroup
	wg.Go(func() { slow.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
	<-entered
	w := httptest.NewRecorder()
	slow.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	close(release)
	wg.Wait()
	if w.Code != 429 || refused.Load() != 1 {
		t.Errorf("in_flight: second request %d, OnRefuse called %d times; want 429 and 1", w.Code, refused.Load())
	}
}
