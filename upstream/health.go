package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
)

// maxConcurrentProbes bounds the probes of one pool in flight at once, so a
// service with hundreds of backends does not open hundreds of sockets at
// every interval.
const maxConcurrentProbes = 16

// probeUserAgent lets backends tell health probes from traffic in their logs.
const probeUserAgent = "proxynow-health-check"

// healthDefaults fills in what config documents as the defaults of a
// health_check block, so a hand-built config (tests, embedders) behaves as
// a decoded one.
func healthDefaults(c config.HealthCheck) *config.HealthCheck {
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.ExpectStatusLo == 0 && c.ExpectStatusHi == 0 {
		c.ExpectStatusLo, c.ExpectStatusHi = 200, 399
	}
	if c.ExpectStatusHi == 0 {
		c.ExpectStatusHi = c.ExpectStatusLo
	}
	if c.UnhealthyAfter <= 0 {
		c.UnhealthyAfter = 2
	}
	if c.HealthyAfter <= 0 {
		c.HealthyAfter = 1
	}
	return &c
}

// healthChecker is the running health check of one pool.
type healthChecker struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the checking goroutine has returned
	// h1 probes http:// and https:// backends (HTTP/2 when a TLS backend
	// picks it by ALPN), h2c probes h2c:// ones: net/http speaks prior
	// knowledge h2c only on a transport without HTTP/1. Either is nil when
	// no backend needs it.
	h1, h2c *http.Transport
	targets []*probeTarget
}

// probeTarget is one backend's probe setup and its run of results. The
// counters are touched only by the probe of this backend, and rounds do not
// overlap, so they need no lock.
type probeTarget struct {
	b    *Backend
	url  string      // for HTTP schemes
	tls  *tls.Config // for https: Backend.TLS offering h2 and http/1.1
	oks  int         // consecutive successes
	errs int         // consecutive failures
}

type probeTargetKey struct{}

// StartHealthChecks starts the active health checks of the pool's
// health_check block, if it has one: one goroutine probes every backend
// every interval (at once on start), up to maxConcurrentProbes at a time,
// each probe bounded by the block's timeout. A backend leaves rotation
// after unhealthy_after consecutive failed probes and returns after
// healthy_after consecutive successes; each change is logged. Backends
// start healthy. Calls after the first, or after Close, do nothing.
func (p *Pool) StartHealthChecks() {
	if p.health == nil || len(p.backends) == 0 {
		return
	}
	p.hcMu.Lock()
	defer p.hcMu.Unlock()
	if p.hc != nil || p.hcClosed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &healthChecker{cancel: cancel, done: make(chan struct{})}
	for _, b := range p.backends {
		t := &probeTarget{b: b}
		switch b.Scheme {
		case config.SchemeHTTP, config.SchemeH2C:
			t.url = "http://" + b.Addr + p.health.Path
		case config.SchemeHTTPS, config.SchemeH3:
			t.url = "https://" + b.Addr + p.health.Path
			if b.TLS != nil {
				t.tls = b.TLS.Clone()
			} else {
				host, _, _ := net.SplitHostPort(b.Addr)
				t.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			}
			t.tls.NextProtos = []string{"h2", "http/1.1"}
		}
		switch b.Scheme {
		case config.SchemeHTTP, config.SchemeHTTPS:
			if c.h1 == nil {
				c.h1 = p.probeTransport(false)
			}
		case config.SchemeH2C:
			if c.h2c == nil {
				c.h2c = p.probeTransport(true)
			}
		}
		c.targets = append(c.targets, t)
	}
	p.hc = c
	go p.runHealthChecks(ctx, c)
}

// probeTransport is the transport of a pool's HTTP probes. Keep-alives are
// off: every probe opens a connection, which is what new traffic will do,
// so a backend that stopped accepting is caught even while an old
// connection still answers; and reusing a connection idle for a whole
// interval races the backend's idle timeout (a probe sent as the backend
// closes fails for no fault of the backend's). At one probe per interval
// per backend the extra handshakes cost nothing (TLS resumes sessions
// through Backend.TLS's cache).
func (p *Pool) probeTransport(h2c bool) *http.Transport {
	t := &http.Transport{
		DialContext:            p.dialer.DialContext,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
		Protocols:              new(http.Protocols),
	}
	if h2c {
		t.Protocols.SetUnencryptedHTTP2(true)
		return t
	}
	t.Protocols.SetHTTP1(true)
	t.Protocols.SetHTTP2(true)
	// Each TLS backend has its own server name and roots: the request's
	// context says which backend is being dialed.
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		target, _ := ctx.Value(probeTargetKey{}).(*probeTarget)
		if target == nil || target.tls == nil {
			return nil, fmt.Errorf("health check: no TLS configuration for %s", addr)
		}
		conn, err := p.dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, target.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
	return t
}

// stop cancels the checks and waits for the goroutine (and so for every
// probe) to end. Safe to call more than once.
func (c *healthChecker) stop() {
	c.cancel()
	<-c.done
	for _, t := range []*http.Transport{c.h1, c.h2c} {
		if t != nil {
			t.CloseIdleConnections()
		}
	}
}

func (p *Pool) runHealthChecks(ctx context.Context, c *healthChecker) {
	defer close(c.done)
	sem := make(chan struct{}, min(len(c.targets), maxConcurrentProbes))
	tick := time.NewTicker(p.health.Interval)
	defer tick.Stop()
	for {
		p.probeRound(ctx, c, sem)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeRound probes every backend once and returns when all probes are
// done. A round lasts at most about timeout × ceil(backends /
// maxConcurrentProbes); a round longer than the interval delays the next
// one rather than overlapping it (time.Ticker drops the missed ticks).
func (p *Pool) probeRound(ctx context.Context, c *healthChecker, sem chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, t := range c.targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := p.probe(ctx, c, t)
			if ctx.Err() != nil {
				return // stopped by Close: not the backend's fault
			}
			p.observe(t, err)
		})
	}
}

// probe checks one backend once; nil means healthy.
func (p *Pool) probe(ctx context.Context, c *healthChecker, t *probeTarget) error {
	ctx, cancel := context.WithTimeout(ctx, p.health.Timeout)
	defer cancel()
	switch t.b.Scheme {
	case config.SchemeHTTP, config.SchemeHTTPS:
		return p.probeHTTP(ctx, c.h1, t)
	case config.SchemeH2C:
		return p.probeHTTP(ctx, c.h2c, t)
	case config.SchemeH3:
		return p.probeH3(ctx, t)
	}
	// An L4 backend is healthy when it accepts a connection (and completes
	// a TLS handshake, for tls://).
	conn, err := p.dial(ctx, "tcp", t.b)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

func (p *Pool) probeHTTP(ctx context.Context, rt http.RoundTripper, t *probeTarget) error {
	ctx = context.WithValue(ctx, probeTargetKey{}, t)
	req, err := http.NewRequestWithContext(ctx, p.health.Method, t.url, nil)
	if err != nil {
		return err
	}
	if p.health.Host != "" {
		req.Host = p.health.Host
	}
	req.Header.Set("User-Agent", probeUserAgent)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	// No need to drain: the connection is not reused.
	resp.Body.Close()
	if resp.StatusCode < p.health.ExpectStatusLo || resp.StatusCode > p.health.ExpectStatusHi {
		return &statusError{got: resp.StatusCode, lo: p.health.ExpectStatusLo, hi: p.health.ExpectStatusHi}
	}
	return nil
}

// statusError is a probe answered with a status outside expect_status.
type statusError struct{ got, lo, hi int }

func (e *statusError) Error() string {
	want := strconv.Itoa(e.lo)
	if e.hi != e.lo {
		want += "-" + strconv.Itoa(e.hi)
	}
	return fmt.Sprintf("status %d, want %s", e.got, want)
}

// observe records one probe result and moves the backend in or out of
// rotation when a run of results reaches the threshold.
func (p *Pool) observe(t *probeTarget, err error) {
	b := t.b
	b.countProbe(err)
	if err == nil {
		t.oks++
		t.errs = 0
		if !b.Healthy() && t.oks >= p.health.HealthyAfter {
			b.SetHealthy(true)
			p.log.Info("backend healthy", "service", p.name, "backend", b.Addr,
				"reason", fmt.Sprintf("%d consecutive successful health checks", t.oks))
		}
		return
	}
	t.errs++
	t.oks = 0
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", p.health.Timeout, err)
	}
	if b.Healthy() && t.errs >= p.health.UnhealthyAfter {
		b.SetHealthy(false)
		p.log.Info("backend unhealthy", "service", p.name, "backend", b.Addr,
			"reason", fmt.Sprintf("%d consecutive failed health checks, last: %v", t.errs, err))
		return
	}
	p.log.Debug("health check failed", "service", p.name, "backend", b.Addr, "error", err)
}
