package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/config"
)

// ErrNoBackend is returned by Dial when no backend of the pool could be
// reached: each was tried at most once and every dial failed.
var ErrNoBackend = errors.New("no backend available")

// Backend is one member of a Pool.
type Backend struct {
	// Addr is the backend's host:port as configured.
	Addr string
	// Weight is the balancer weight, at least 1.
	Weight int

	// Scheme is the backend's config.Scheme* ("" for plain TCP).
	Scheme string
	// TLS, when set, makes connections to this backend TLS clients.
	TLS *tls.Config

	id      string // stable identifier for sticky cookies
	idHash  uint64 // for rendezvous hashing
	healthy atomic.Bool

	active    atomic.Int64     // connections in use
	downUntil atomic.Int64     // unix nanoseconds; skipped by the balancer until then
	current   int              // smooth weighted round robin state, guarded by Pool.mu
	probes    [2]atomic.Uint64 // health check results: ok, failed (metrics)
}

func newBackend(addr string, weight int) *Backend {
	b := &Backend{Addr: addr, Weight: weight}
	h := fnv.New64a()
	h.Write([]byte(addr))
	b.idHash = h.Sum64()
	b.id = strconv.FormatUint(b.idHash, 36)
	b.healthy.Store(true)
	return b
}

// ID identifies the backend stably across restarts (sticky cookies).
func (b *Backend) ID() string { return b.id }

// Healthy reports the active health check's verdict (true without checks).
func (b *Backend) Healthy() bool { return b.healthy.Load() }

// SetHealthy records an active health check's verdict.
func (b *Backend) SetHealthy(ok bool) { b.healthy.Store(ok) }

// Active is the number of connections to this backend in use now.
func (b *Backend) Active() int64 { return b.active.Load() }

// Down reports whether the backend is being skipped after a failure.
func (b *Backend) Down(now time.Time) bool { return b.downUntil.Load() > now.UnixNano() }

// down is Down against a clock read only when b has been marked down.
func (b *Backend) down(now *lazyNow) bool {
	du := b.downUntil.Load()
	return du != 0 && du > now.unixNano()
}

// lazyNow is one pick's clock, read at most once and only when a backend
// marked down must be compared with it: a pick among backends none of
// which failed lately (nearly every pick) reads no clock (time.Now is
// about 60 ns, a quarter of a percent of a proxied request).
type lazyNow struct {
	now func() time.Time
	ns  int64 // 0: not read yet
}

func (c *lazyNow) unixNano() int64 {
	if c.ns == 0 {
		c.ns = c.now().UnixNano()
	}
	return c.ns
}

// Pool is the set of backends of one service.
type Pool struct {
	name        string
	kind        string
	backends    []*Backend
	failTimeout time.Duration
	dialer      net.Dialer
	log         *slog.Logger
	now         func() time.Time

	rr atomic.Uint64 // round robin and tie-break cursor
	mu sync.Mutex    // weighted balancer state

	breaker  *Breaker            // nil without a circuit_breaker block
	health   *config.HealthCheck // nil without a health_check block; defaults filled in
	hcMu     sync.Mutex          // guards hc and hcClosed
	hc       *healthChecker      // running health checks, nil until StartHealthChecks
	hcClosed bool
}

// Options are the parts of a Pool that are not in the configuration.
type Options struct {
	Logger *slog.Logger // default: discard
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewPool builds the pool for one service. svc must be a validated service;
// the error is about files it names (a CA bundle that no longer loads).
func NewPool(svc *config.Service, opts Options) (*Pool, error) {
	p := &Pool{
		name:        svc.Name,
		kind:        svc.Balancer,
		failTimeout: svc.FailTimeout,
		log:         opts.Logger,
		now:         opts.Now,
		dialer: net.Dialer{
			Timeout:         svc.ConnectTimeout,
			KeepAliveConfig: keepAlive,
		},
	}
	if p.kind == "" {
		p.kind = config.BalancerRoundRobin
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	var base *tls.Config
	for _, b := range svc.Backends {
		w := b.Weight
		if w < 1 {
			w = 1
		}
		be := newBackend(b.Address, w)
		be.Scheme = b.Scheme
		if b.TLS {
			if base == nil {
				var err error
				if base, err = backendTLS(svc.TLS); err != nil {
					return nil, fmt.Errorf("service %q: %w", svc.Name, err)
				}
			}
			be.TLS = base.Clone()
			be.TLS.ServerName = b.ServerName
			if be.TLS.ServerName == "" {
				// An IP literal: crypto/tls verifies it against the
				// certificate's IP SANs and sends no SNI.
				be.TLS.ServerName, _, _ = net.SplitHostPort(b.Address)
			}
		}
		p.backends = append(p.backends, be)
	}
	if hc := svc.HTTP.HealthCheck; hc != nil {
		p.health = healthDefaults(*hc)
	}
	if cb := svc.HTTP.CircuitBreaker; cb != nil {
		p.breaker = NewBreaker(svc.Name, cb, p.log)
	}
	return p, nil
}

// Breaker is the service's circuit breaker, nil when the service has no
// circuit_breaker block.
func (p *Pool) Breaker() *Breaker { return p.breaker }

// Close stops the pool's health checks and waits for their goroutine. It is
// idempotent, safe when checks never started, and afterwards
// StartHealthChecks does nothing. Dial and Pick keep working.
func (p *Pool) Close() {
	p.hcMu.Lock()
	p.hcClosed = true
	c := p.hc
	p.hcMu.Unlock()
	if c != nil {
		c.stop()
	}
}

// backendTLS is the client configuration shared by a service's TLS
// backends: the service's CA bundle or the system roots.
func backendTLS(c *config.BackendTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	if c == nil {
		return cfg, nil
	}
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate", c.CAFile)
		}
	}
	return cfg, nil
}

// keepAlive is the TCP keep-alive toward backends: probe after 30s idle.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: 4}

// Name is the service name.
func (p *Pool) Name() string { return p.name }

// Backends returns the pool's members (do not modify).
func (p *Pool) Backends() []*Backend { return p.backends }

// Conn is a connection to a backend. Release must be called exactly once
// when the caller is done with it (it does not close the connection).
type Conn struct {
	net.Conn
	Backend *Backend
}

// Release marks the connection as no longer in use for least_conn.
func (c *Conn) Release() { c.Backend.active.Add(-1) }

// Dial connects to a backend chosen by the balancer over network ("tcp" or
// "udp"). On a failed dial the backend is marked down for the pool's fail
// timeout and the next backend is tried; each backend is tried at most once.
// Backends marked down are tried only after every backend that is up has
// failed, so a pool whose every member is marked down still recovers as soon
// as one comes back (Envoy's "panic mode") instead of refusing everything for
// the whole fail timeout.
func (p *Pool) Dial(ctx context.Context, network string) (*Conn, error) {
	var tried bitset
	if n := len(p.backends); n > 64 {
		tried.big = make([]uint64, (n+63)/64)
	}
	var errs []error
	for range p.backends {
		now := &lazyNow{now: p.now}
		i := p.pick(&tried, now, false)
		if i < 0 {
			i = p.pick(&tried, now, true)
		}
		if i < 0 {
			break
		}
		tried.set(i)
		b := p.backends[i]
		b.active.Add(1)
		c, err := p.dial(ctx, network, b)
		if err == nil {
			b.downUntil.Store(0)
			return &Conn{Conn: c, Backend: b}, nil
		}
		b.active.Add(-1)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("service %q: %w", p.name, ctx.Err())
		}
		p.DialFailed(b, err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("service %q: %w: %w", p.name, ErrNoBackend, errors.Join(errs...))
}

// dial connects to b, with a TLS handshake for a TLS backend; the
// connect timeout bounds both.
func (p *Pool) dial(ctx context.Context, network string, b *Backend) (net.Conn, error) {
	if b.TLS == nil {
		return p.dialer.DialContext(ctx, network, b.Addr)
	}
	if p.dialer.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.dialer.Timeout)
		defer cancel()
	}
	c, err := p.dialer.DialContext(ctx, network, b.Addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, b.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", b.Addr, err)
	}
	return tc, nil
}

// MarkDown makes the balancer skip b for the pool's fail timeout.
func (p *Pool) MarkDown(b *Backend) {
	b.downUntil.Store(p.now().Add(p.failTimeout).UnixNano())
}

// DialFailed records a failed connection to b, for TCP and HTTP alike: b
// is marked down and the failure logged at warn. The mark bounds the
// log: a backend marked down is dialed again within its fail timeout only
// when no backend that is up is left.
func (p *Pool) DialFailed(b *Backend, err error) {
	p.MarkDown(b)
	p.log.Warn("backend dial failed", "service", p.name, "backend", b.Addr, "error", err)
}

// bitset records which backends a Dial has tried; no allocation up to 64.
type bitset struct {
	small uint64
	big   []uint64
}

func (s *bitset) set(i int) {
	if s.big != nil {
		s.big[i/64] |= 1 << (i % 64)
		return
	}
	s.small |= 1 << i
}

func (s *bitset) has(i int) bool {
	if s.big != nil {
		return s.big[i/64]&(1<<(i%64)) != 0
	}
	return s.small&(1<<i) != 0
}
