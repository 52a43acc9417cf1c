package upstream

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

func testBreaker(t testing.TB, openTimeout time.Duration) *Breaker {
	t.Helper()
	return NewBreaker("api", &config.CircuitBreaker{
		FailureRatio: 0.5, MinRequests: 5, Interval: time.Minute, OpenTimeout: openTimeout,
	}, nil)
}

// run reports one request per character of outcomes: o success, x failure.
func run(t *testing.T, b *Breaker, outcomes string) {
	t.Helper()
	for i, r := range outcomes {
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("request %d of %s refused: %v", i, outcomes, err)
		}
		done(r == 'o')
	}
}

func TestBreakerTripRule(t *testing.T) {
	tests := []struct {
		name     string
		outcomes string
		want     int
	}{
		{name: "four failures are below min_requests", outcomes: "xxxx", want: BreakerClosed},
		{name: "five failures open", outcomes: "xxxxx", want: BreakerOpen},
		{name: "2 of 5 failed is below the ratio", outcomes: "oooxx", want: BreakerClosed},
		{name: "3 of 6 failed reaches the ratio", outcomes: "oooxxx", want: BreakerOpen},
		{name: "successes never open", outcomes: strings.Repeat("o", 50), want: BreakerClosed},
		{name: "ratio, not consecutive failures", outcomes: "xoxox", want: BreakerOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBreaker(t, time.Hour)
			run(t, b, tt.outcomes)
			if got := b.State(); got != tt.want {
				t.Fatalf("after %s: state %d, want %d", tt.outcomes, got, tt.want)
			}
		})
	}
}

func TestBreakerOpenHalfOpenClose(t *testing.T) {
	const openTimeout = 50 * time.Millisecond
	log, logs := testLogger()
	b := NewBreaker("api", &config.CircuitBreaker{
		FailureRatio: 0.5, MinRequests: 5, Interval: time.Minute, OpenTimeout: openTimeout,
	}, log)

	// halfOpen waits out the open timeout and takes the half-open probe.
	halfOpen := func(t *testing.T) func(bool) {
		t.Helper()
		var done func(bool)
		waitFor(t, func() bool {
			var err error
			done, err = b.Allow()
			return err == nil
		})
		if got := b.State(); got != BreakerHalfOpen {
			t.Fatalf("probe allowed in state %d", got)
		}
		// A second request while the probe is in flight is refused.
		_, err := b.Allow()
		var oe *OpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrBreakerOpen) || oe.RetryAfter < time.Second {
			t.Fatalf("second half-open request: %v", err)
		}
		return done
	}

	start := time.Now() // before the breaker opens
	run(t, b, "xxxxx")
	if got := b.State(); got != BreakerOpen {
		t.Fatalf("state %d after 5 failures", got)
	}
	_, err := b.Allow()
	var oe *OpenError
	if !errors.As(err, &oe) || !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("Allow while open: %v", err)
	}
	// 50ms to go, rounded up to Retry-After's 1s floor.
	if oe.Service != "api" || oe.RetryAfter != time.Second {
		t.Fatalf("OpenError %+v", oe)
	}

	halfOpen(t)(true)
	if el := time.Since(start); el < openTimeout {
		t.Errorf("half-opened after %v, open timeout %v", el, openTimeout)
	}
	if got := b.State(); got != BreakerClosed {
		t.Fatalf("state %d after a successful probe", got)
	}

	run(t, b, "xxxxx")
	halfOpen(t)(false)
	if got := b.State(); got != BreakerOpen {
		t.Fatalf("state %d after a failed probe", got)
	}
	halfOpen(t)(true)

	for _, c := range []struct {
		state int
		want  uint64
	}{{BreakerOpen, 3}, {BreakerHalfOpen, 3}, {BreakerClosed, 2}} {
		if got := b.Transitions(c.state); got != c.want {
			t.Errorf("Transitions(%d) = %d, want %d", c.state, got, c.want)
		}
	}
	l := logs.String()
	for _, want := range []string{
		`level=WARN msg="circuit breaker open" service=api from=closed to=open`,
		`level=INFO msg="circuit breaker half-open" service=api from=open to=half-open`,
		`level=INFO msg="circuit breaker closed" service=api from=half-open to=closed`,
		`msg="circuit breaker open" service=api from=half-open to=open`,
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
}

func TestBreakerRetryAfter(t *testing.T) {
	b := testBreaker(t, 10*time.Second)
	run(t, b, "xxxxx")
	_, err := b.Allow()
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatal(err)
	}
	if oe.RetryAfter > 10*time.Second || oe.RetryAfter < 9*time.Second {
		t.Fatalf("RetryAfter %v, open timeout 10s", oe.RetryAfter)
	}
	if !strings.Contains(err.Error(), `service "api": circuit breaker open`) {
		t.Errorf("error text %q", err)
	}
}

// TestBreakerOneProbe races many requests at a half-open breaker: exactly
// one gets through.
func TestBreakerOneProbe(t *testing.T) {
	b := testBreaker(t, 20*time.Millisecond)
	run(t, b, "xxxxx")
	time.Sleep(30 * time.Millisecond)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			<-start
			if _, err := b.Allow(); err == nil {
				allowed.Add(1)
			} else if !errors.Is(err, ErrBreakerOpen) {
				t.Errorf("refusal %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d requests allowed while half-open, want 1", n)
	}
}

func TestBreakerFailureStatus(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int
		codes  map[int]bool
	}{
		{name: "default 5xx", codes: map[int]bool{200: false, 404: false, 499: false, 500: true, 503: true, 599: true, 600: false}},
		{name: "502-504 only", lo: 502, hi: 504, codes: map[int]bool{500: false, 502: true, 504: true, 505: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBreaker("api", &config.CircuitBreaker{FailureStatusLo: tt.lo, FailureStatusHi: tt.hi}, nil)
			for code, want := range tt.codes {
				if got := b.IsFailureStatus(code); got != want {
					t.Errorf("IsFailureStatus(%d) = %v", code, got)
				}
			}
		})
	}
}

func TestPoolBreaker(t *testing.T) {
	svc := service("", 1)
	if p := newPool(t, svc, Options{}); p.Breaker() != nil {
		t.Fatal("breaker without a circuit_breaker block")
	}
	svc.HTTP.CircuitBreaker = &config.CircuitBreaker{MinRequests: 1, FailureRatio: 1}
	p := newPool(t, svc, Options{})
	if p.Breaker() == nil {
		t.Fatal("no breaker")
	}
	run(t, p.Breaker(), "x")
	if p.Breaker().State() != BreakerOpen {
		t.Fatal("min_requests 1, ratio 1: one failure should open")
	}
}

func BenchmarkBreakerAllow(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		br := testBreaker(b, time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			done, _ := br.Allow()
			done(true)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br := testBreaker(b, time.Hour)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				done, _ := br.Allow()
				done(true)
			}
		})
	})
}
