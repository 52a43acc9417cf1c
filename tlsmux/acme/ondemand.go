package acme

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/proxynow/proxynow/config"
)

// On-demand limits. A handshake for an unknown name costs at most one
// bounded call to the ask endpoint; only approved names take an order
// token, so a flood of random SNIs causes at most Rate orders per
// Interval.
const (
	askTimeout   = 5 * time.Second
	askParallel  = 16          // ask calls in flight; more are refused at once
	denyFor      = time.Minute // a refused name is not asked again for this long
	maxDenied    = 10000       // the cache of refused names is cleared beyond this
	orderTimeout = 2 * time.Minute
)

// onDemand issues at the first handshake for names its ask endpoint
// approves (Caddy's on-demand TLS).
type onDemand struct {
	is     *issuer
	cfg    *config.OnDemand
	hc     *http.Client
	askSem chan struct{}
	// orders holds the order tokens: Rate of them, refilled evenly over
	// Interval.
	orders *rate.Limiter

	mu       sync.Mutex
	denied   map[string]time.Time // name -> until
	inflight map[string]*call
}

type call struct {
	done chan struct{}
	cert *tls.Certificate
}

func newOnDemand(is *issuer) *onDemand {
	cfg := is.cfg.OnDemand
	return &onDemand{is: is, cfg: cfg, hc: &http.Client{Timeout: askTimeout},
		askSem: make(chan struct{}, askParallel), orders: orderLimiter(cfg.Rate, cfg.Interval),
		denied: map[string]time.Time{}, inflight: map[string]*call{}}
}

// orderLimiter allows n orders at once, and n more each interval after
// (validate makes n at least 1 and interval positive).
func orderLimiter(n int, interval time.Duration) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(n)/interval.Seconds()), n)
}

// loadStored adds the certificates obtained on demand before a restart
// to loaded and to the issuer's domains: every stored file that is not
// one of the configured domains'.
func (od *onDemand) loadStored(static map[string]*issuer, loaded map[string]*tls.Certificate) {
	ents, err := os.ReadDir(od.is.store.certs)
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || strings.HasPrefix(name, ".") || static[name] != nil || !onDemandName(name) {
			continue
		}
		c, err := od.is.store.loadCert(name)
		if err != nil || c.Leaf.VerifyHostname(name) != nil || now.After(c.Leaf.NotAfter) {
			continue // expired: obtained again at its next handshake
		}
		od.is.domains = append(od.is.domains, &domain{name: name, cert: c})
		loaded[od.is.key(name)] = c
	}
}

// onDemandName reports whether name may be asked about: a DNS name of at
// least two labels of letters, digits and inner hyphens, not an IP.
func onDemandName(name string) bool {
	if len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// get returns a certificate for name obtained now, or nil. Concurrent
// handshakes for one name share one issuance; each waits at most until
// its ctx ends (the issuance goes on, and the next handshake gets it).
func (od *onDemand) get(ctx context.Context, name string) *tls.Certificate {
	if !onDemandName(name) {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	od.mu.Lock()
	c := od.inflight[name]
	if c == nil {
		if until, ok := od.denied[name]; ok && time.Now().Before(until) {
			od.mu.Unlock()
			return nil
		}
		c = &call{done: make(chan struct{})}
		started := od.is.m.goBackground(func() {
			c.cert = od.issue(name)
			od.mu.Lock()
			delete(od.inflight, name)
			od.mu.Unlock()
			close(c.done)
		})
		if !started {
			od.mu.Unlock()
			return nil
		}
		od.inflight[name] = c
	}
	od.mu.Unlock()
	select {
	case <-c.done:
		return c.cert
	case <-ctx.Done():
		return nil
	}
}

// issue asks, takes an order token and obtains.
func (od *onDemand) issue(name string) *tls.Certificate {
	m := od.is.m
	if m.ctx.Err() != nil {
		return nil
	}
	select {
	case od.askSem <- struct{}{}:
	default:
		od.is.log.Warn("on-demand certificate refused: too many ask calls in flight", "domain", name)
		return nil
	}
	ok, err := od.ask(m.ctx, name)
	<-od.askSem
	if err != nil || !ok {
		od.deny(name)
		od.is.log.Info("on-demand certificate refused by the ask endpoint", "domain", name, "error", err)
		return nil
	}
	if !od.take() {
		od.is.log.Warn("on-demand certificate refused: order rate limit reached", "domain", name,
			"rate", od.cfg.Rate, "interval", od.cfg.Interval)
		return nil
	}
	if _, err := od.is.legoClient(); err != nil {
		od.is.log.Error("on-demand certificate failed: ACME account setup", "domain", name, "error", err)
		return nil
	}
	d := &domain{name: name}
	start := time.Now()
	c, err := od.is.obtain(d)
	if err != nil {
		od.deny(name)
		od.is.log.Error("on-demand certificate failed", "domain", name, "error", err)
		return nil
	}
	d.cert = c
	at, poll := od.is.renewAt(d)
	d.due = minTime(at, time.Now().Add(poll))
	od.is.add(d)
	od.is.log.Info("certificate obtained", "domain", name, "on_demand", true, "not_after", c.Leaf.NotAfter,
		"renew_at", at, "took", time.Since(start).Round(time.Millisecond))
	return c
}

// ask calls the ask endpoint: GET ask?domain=name, approved on 200.
func (od *onDemand) ask(ctx context.Context, name string) (bool, error) {
	u, err := url.Parse(od.cfg.Ask)
	if err != nil {
		return false, err
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	resp, err := od.hc.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

func (od *onDemand) deny(name string) {
	od.mu.Lock()
	defer od.mu.Unlock()
	if len(od.denied) >= maxDenied {
		clear(od.denied)
	}
	od.denied[name] = time.Now().Add(denyFor)
}

// take takes one order token.
func (od *onDemand) take() bool { return od.orders.Allow() }
