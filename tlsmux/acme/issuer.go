package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"

	"github.com/proxynow/proxynow/config"
)

// issuer runs one acme block: one account at one CA, one certificate per
// domain. Its run goroutine sets up the account, then works on up to
// parallel domains at a time (lego's client is safe for that): a CA
// answering a validation takes seconds, mostly spent polling.
type issuer struct {
	m         *Manager
	cfg       *config.ACME
	store     *storage
	log       *slog.Logger
	domains   []*domain
	retryBase time.Duration
	retryMax  time.Duration
	hc        *http.Client
	clientMu  sync.Mutex                  // serialises setup
	client    atomic.Pointer[lego.Client] // nil until setup succeeds
	acct      *account
	regMu     sync.Mutex  // serialises registering (again)
	noARI     atomic.Bool // the CA does not offer renewal information
	setupN    int         // consecutive setup failures (run goroutine)

	domMu sync.Mutex // guards domains: on-demand adds to it
	wake  chan struct{}
}

// parallel bounds the issuances in flight per acme block.
const parallel = 4

func jitter(n int64) int64 { return rand.Int64N(n) }

// domain is one managed name and its certificate, touched by one
// goroutine at a time.
type domain struct {
	name     string
	cert     *tls.Certificate // served now; nil before the first issuance
	due      time.Time        // when to look at it next
	failures int              // consecutive failed issuances
	// plan is the renewal time chosen for cert, and ari the CA's window
	// it was chosen in (zero without ARI): a time is drawn once per
	// window, not at every look (RFC 9773, section 4.2).
	plan  time.Time
	ari   [2]time.Time
	ariAt time.Time
}

var keyTypes = map[string]certcrypto.KeyType{
	config.KeyEC256: certcrypto.EC256, config.KeyEC384: certcrypto.EC384,
	config.KeyRSA2048: certcrypto.RSA2048, config.KeyRSA3072: certcrypto.RSA3072, config.KeyRSA4096: certcrypto.RSA4096,
}

// newIssuer opens the storage of cfg and adds the stored, unexpired
// certificates of its domains to loaded (keyed like SetManaged).
func newIssuer(m *Manager, cfg *config.ACME, base, max time.Duration, loaded map[string]*tls.Certificate) (*issuer, error) {
	st, err := newStorage(cfg.Storage, cfg.Directory)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(m.ctx, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	is := &issuer{m: m, cfg: cfg, store: st, log: m.log.With("acme", cfg.Name), retryBase: base, retryMax: max, hc: hc,
		wake: make(chan struct{}, 1)}
	now := time.Now()
	for _, name := range cfg.Domains {
		d := &domain{name: name}
		is.domains = append(is.domains, d)
		c, err := st.loadCert(name)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			is.log.Error("stored certificate unusable; obtaining a new one", "domain", name, "file", st.certPath(name), "error", err)
		case c.Leaf.VerifyHostname(hostOf(name)) != nil || now.After(c.Leaf.NotAfter):
			is.log.Info("stored certificate expired or not for this name; obtaining a new one", "domain", name, "not_after", c.Leaf.NotAfter)
		default:
			d.cert = c
			loaded[is.key(name)] = c
		}
	}
	return is, nil
}

// hostOf is a name VerifyHostname accepts for domain: a wildcard is
// checked with a name it covers.
func hostOf(domain string) string {
	if len(domain) > 2 && domain[:2] == "*." {
		return "x" + domain[1:]
	}
	return domain
}

// key is the CertStore key of a domain's certificate.
func (is *issuer) key(domain string) string { return is.m.prefix + is.cfg.Name + "/" + domain }

// run obtains missing certificates and renews due ones until ctx ends.
func (is *issuer) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-is.wake:
			timer.Stop()
		}
		next := is.pass(ctx)
		if first && is.client.Load() != nil && ctx.Err() == nil {
			first = false
			served := 0
			for _, d := range is.snapshot() {
				if d.cert != nil {
					served++
				}
			}
			is.log.Info("ACME initial check done", "domains", len(is.snapshot()), "served", served, "next_check", next)
		}
		timer.Reset(max(time.Until(next), 0))
	}
}

// pass handles every domain that is due and returns when to wake next.
func (is *issuer) pass(ctx context.Context) time.Time {
	if is.client.Load() == nil {
		if _, err := is.legoClient(); err != nil {
			is.setupN++
			wait := backoff(is.setupN, is.retryBase, is.retryMax, jitter)
			if ctx.Err() == nil {
				is.log.Error("ACME account setup failed; will retry", "directory", is.cfg.Directory, "error", err, "retry_in", wait)
			}
			return time.Now().Add(wait)
		}
		is.setupN = 0
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	domains := is.snapshot()
	for _, d := range domains {
		if time.Now().Before(d.due) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			is.step(ctx, d)
		})
	}
	wg.Wait()
	next := time.Now().Add(ariPoll)
	for _, d := range is.snapshot() {
		next = minTime(next, d.due)
	}
	return next
}

// snapshot is the list of domains now.
func (is *issuer) snapshot() []*domain {
	is.domMu.Lock()
	defer is.domMu.Unlock()
	return is.domains[:len(is.domains):len(is.domains)]
}

// add manages one more domain (obtained on demand) and wakes run so that
// it schedules its renewal.
func (is *issuer) add(d *domain) {
	is.domMu.Lock()
	is.domains = append(is.domains, d)
	is.domMu.Unlock()
	select {
	case is.wake <- struct{}{}:
	default:
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// step renews d when due, or obtains its first certificate, and sets
// when to look at it again.
func (is *issuer) step(ctx context.Context, d *domain) {
	now := time.Now()
	if d.cert != nil {
		at, poll := is.renewAt(d)
		if now.Before(at) {
			d.due = minTime(at, now.Add(poll))
			is.log.Debug("certificate valid; renewal scheduled", "domain", d.name, "not_after", d.cert.Leaf.NotAfter, "renew_at", at)
			return
		}
	}
	start := time.Now()
	c, err := is.obtain(d)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the abort is no failure
		}
		d.failures++
		wait := backoff(d.failures, is.retryBase, is.retryMax, jitter)
		d.due = time.Now().Add(wait)
		args := []any{"domain", d.name, "error", err, "failures", d.failures, "retry_in", wait}
		if d.cert != nil {
			args = append(args, "serving_until", d.cert.Leaf.NotAfter)
		}
		is.log.Error("ACME issuance failed; keeping what is served", args...)
		return
	}
	d.failures = 0
	renewed := d.cert != nil
	d.cert, d.plan, d.ari, d.ariAt = c, time.Time{}, [2]time.Time{}, time.Time{}
	at, poll := is.renewAt(d)
	d.due = minTime(at, time.Now().Add(poll))
	is.log.Info("certificate obtained", "domain", d.name, "renewal", renewed, "not_after", c.Leaf.NotAfter,
		"renew_at", at, "took", time.Since(start).Round(time.Millisecond))
}

// obtain orders a certificate for d, stores it and serves it.
func (is *issuer) obtain(d *domain) (*tls.Certificate, error) {
	client := is.client.Load()
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{d.name}, Bundle: true})
	if isAccountGone(err) {
		// The CA forgot the account (a test CA restarted, or it was
		// deactivated elsewhere): register the same key again, once.
		is.log.Warn("ACME account unknown to the CA; registering again", "directory", is.cfg.Directory)
		if err = is.register(client); err == nil {
			res, err = client.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{d.name}, Bundle: true})
		}
	}
	if err != nil {
		return nil, err
	}
	c, err := parseBundle(append(append([]byte(nil), res.Certificate...), res.PrivateKey...))
	if err != nil {
		return nil, fmt.Errorf("CA returned an unusable certificate: %w", err)
	}
	if err := is.store.saveCert(d.name, res.Certificate, res.PrivateKey); err != nil {
		// Serve it anyway; the next start orders again.
		is.log.Error("could not store the certificate; serving it from memory", "domain", d.name, "error", err)
	}
	if err := is.m.setManaged(map[string]*tls.Certificate{is.key(d.name): c}); err != nil {
		return nil, err
	}
	return c, nil
}

func isAccountGone(err error) bool {
	var pd *acme.ProblemDetails
	return errors.As(err, &pd) && pd.Type == "urn:ietf:params:acme:error:accountDoesNotExist"
}

// renewAt is when d's certificate should be renewed, and the longest
// sleep before looking again. ARI (RFC 9773) decides when the CA offers
// it, unless renew_before asks for earlier; without it a third of the
// lifetime left.
func (is *issuer) renewAt(d *domain) (time.Time, time.Duration) {
	leaf := d.cert.Leaf
	if d.plan.IsZero() {
		d.plan = renewalTime(leaf, is.cfg.RenewBefore, jitter)
	}
	fallback := d.plan
	client := is.client.Load()
	if is.noARI.Load() || client == nil {
		return fallback, ariPoll
	}
	info, err := client.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: leaf})
	if errors.Is(err, api.ErrNoARI) {
		is.noARI.Store(true)
		return fallback, ariPoll
	}
	if err != nil {
		is.log.Debug("ACME renewal information unavailable; using the certificate's lifetime", "error", err)
		return fallback, time.Hour
	}
	poll := ariPoll
	if info.RetryAfter > 0 {
		poll = min(max(info.RetryAfter, time.Minute), ariPoll)
	}
	win := [2]time.Time{info.SuggestedWindow.Start, info.SuggestedWindow.End}
	if win != d.ari {
		at := info.ShouldRenewAt(time.Now(), leaf.NotAfter.Sub(leaf.NotBefore))
		if at == nil {
			return fallback, poll
		}
		d.ari, d.ariAt = win, *at
	}
	if is.cfg.RenewBefore > 0 && fallback.Before(d.ariAt) {
		return fallback, poll
	}
	return d.ariAt, poll
}

// legoClient returns the client, setting it up first when needed: it
// loads or creates the account and registers it when it has no
// registration yet; the account is stored and reused across restarts.
func (is *issuer) legoClient() (*lego.Client, error) {
	if c := is.client.Load(); c != nil {
		return c, nil
	}
	is.clientMu.Lock()
	defer is.clientMu.Unlock()
	if c := is.client.Load(); c != nil {
		return c, nil
	}
	c, err := is.setup()
	if err != nil {
		return nil, err
	}
	is.client.Store(c)
	return c, nil
}

func (is *issuer) setup() (*lego.Client, error) {
	acct, err := is.store.loadAccount(is.cfg.Email)
	if err != nil {
		return nil, err
	}
	is.acct = acct
	lc := lego.NewConfig(acct)
	lc.CADirURL = is.cfg.Directory
	lc.HTTPClient = is.hc
	lc.UserAgent = "proxynow"
	lc.Certificate.KeyType = keyTypes[is.cfg.KeyType]
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", is.cfg.Directory, err)
	}
	if err := is.challenge(client); err != nil {
		return nil, err
	}
	if acct.Registration == nil {
		if err := is.register(client); err != nil {
			return nil, err
		}
	}
	return client, nil
}

func (is *issuer) register(client *lego.Client) error {
	is.regMu.Lock()
	defer is.regMu.Unlock()
	reg, err := client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return fmt.Errorf("register account: %w", err)
	}
	is.acct.Registration = reg
	if err := is.store.saveAccount(is.acct); err != nil {
		return fmt.Errorf("store account: %w", err)
	}
	is.log.Info("ACME account registered", "directory", is.cfg.Directory, "account", reg.URI)
	return nil
}

// challenge sets up the block's one challenge type.
func (is *issuer) challenge(client *lego.Client) error {
	switch is.cfg.Challenge {
	case config.ChallengeHTTP01:
		return client.Challenge.SetHTTP01Provider(httpProvider{is.m.chal})
	case config.ChallengeTLSALPN01:
		return client.Challenge.SetTLSALPN01Provider(alpnProvider{is.m.chal})
	case config.ChallengeDNS01:
		return setDNS01(client, is.cfg)
	}
	return fmt.Errorf("challenge %q is not supported", is.cfg.Challenge)
}
