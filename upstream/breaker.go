package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/proxynow/proxynow/config"
)

// Breaker states, as State returns them (the values metrics export).
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// ErrBreakerOpen is returned by Allow while the breaker is open, or
// half-open with its probe already in flight. errors.As to *OpenError gives
// the service and how long to wait.
var ErrBreakerOpen = errors.New("circuit breaker open")

// OpenError is the error Allow returns when it refuses a request.
type OpenError struct {
	Service string
	// RetryAfter is the time until the breaker half-opens, at least 1s
	// (Retry-After has whole seconds; round up when writing it).
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("service %q: %v (retry after %v)", e.Service, ErrBreakerOpen, e.RetryAfter)
}

// Is makes errors.Is(err, ErrBreakerOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrBreakerOpen }

// Breaker is the circuit breaker of one service: a gobreaker
// TwoStepCircuitBreaker with proxynow's trip rule. Safe for concurrent use.
type Breaker struct {
	service string
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	timeout time.Duration
	lo, hi  int
	log     *slog.Logger

	openUntil   atomic.Int64     // unix nanoseconds when the current open period ends
	transitions [3]atomic.Uint64 // indexed by the state entered
}

// errFailed is what a failed request reports to gobreaker; only its
// non-nil-ness matters, and a package-level value keeps done(false) from
// allocating.
var errFailed = errors.New("request failed")

// NewBreaker builds the breaker of service from its circuit_breaker block.
// Zero fields (and a nil c) take config's documented defaults: failure
// ratio 0.5, 20 requests, a 10s interval, a 30s open timeout, statuses
// 500-599. log may be nil.
func NewBreaker(service string, c *config.CircuitBreaker, log *slog.Logger) *Breaker {
	var s config.CircuitBreaker
	if c != nil {
		s = *c
	}
	if s.FailureRatio <= 0 {
		s.FailureRatio = 0.5
	}
	if s.MinRequests <= 0 {
		s.MinRequests = 20
	}
	if s.Interval <= 0 {
		s.Interval = 10 * time.Second
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = 30 * time.Second
	}
	if s.FailureStatusLo == 0 && s.FailureStatusHi == 0 {
		s.FailureStatusLo, s.FailureStatusHi = 500, 599
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Breaker{service: service, timeout: s.OpenTimeout, lo: s.FailureStatusLo, hi: s.FailureStatusHi, log: log}
	minReq, ratio := uint32(s.MinRequests), s.FailureRatio
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        service,
		MaxRequests: 1, // one probe while half-open; its success closes the breaker
		Interval:    s.Interval,
		Timeout:     s.OpenTimeout,
		// The ratio is over completed requests, not counts.Requests (which
		// includes requests still in flight): in-flight requests have no
		// verdict yet, and counting them as successes would delay tripping
		// exactly when a backend fails slowly (timeouts) and many requests
		// pile up in flight.
		ReadyToTrip: func(n gobreaker.Counts) bool {
			done := n.TotalSuccesses + n.TotalFailures
			return done >= minReq && float64(n.TotalFailures) >= ratio*float64(done)
		},
		// Called under gobreaker's mutex; transitions are rare, so logging
		// here is cheap enough and keeps the log in transition order.
		OnStateChange: b.stateChanged,
	})
	return b
}

func (b *Breaker) stateChanged(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		b.openUntil.Store(time.Now().Add(b.timeout).UnixNano())
	}
	if i := int(to); i >= 0 && i < len(b.transitions) {
		b.transitions[i].Add(1)
	}
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	b.log.Log(context.Background(), level, "circuit breaker "+to.String(), "service", b.service, "from", from.String(), "to", to.String())
}

// Allow asks whether a request may go to the service. When it may, done
// must be called exactly once with the request's outcome (see
// IsFailureStatus); a half-open breaker stays half-open until its probe's
// done is called. When it may not, err is an *OpenError.
func (b *Breaker) Allow() (done func(success bool), err error) {
	d, err := b.cb.Allow()
	if err != nil {
		return nil, b.openError()
	}
	return func(success bool) {
		if success {
			d(nil)
		} else {
			d(errFailed)
		}
	}, nil
}

func (b *Breaker) openError() error {
	wait := time.Duration(b.openUntil.Load() - time.Now().UnixNano())
	if wait < time.Second {
		// Half-open with the probe in flight, or about to half-open.
		wait = time.Second
	}
	return &OpenError{Service: b.service, RetryAfter: wait}
}

// State is BreakerClosed, BreakerHalfOpen or BreakerOpen. An open breaker
// whose open timeout has passed reports half-open.
func (b *Breaker) State() int { return int(b.cb.State()) }

// Transitions is how many times the breaker entered state (BreakerClosed,
// BreakerHalfOpen or BreakerOpen) since it was built.
func (b *Breaker) Transitions(state int) uint64 {
	if state < 0 || state >= len(b.transitions) {
		return 0
	}
	return b.transitions[state].Load()
}

// IsFailureStatus reports whether a response status counts as a failure
// (failure_status, 500-599 by default). Transport errors and timeouts are
// failures whatever this says.
func (b *Breaker) IsFailureStatus(code int) bool { return code >= b.lo && code <= b.hi }
