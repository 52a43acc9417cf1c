// Package acme obtains certificates from ACME CAs (RFC 8555) with lego,
// serves them through a tlsmux.CertStore, stores them, and renews them in
// the background. Nothing on a connection's path waits for a CA: until a
// name has a certificate, its handshakes get the store's default
// certificate, or fail.
package acme

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/tlsmux"
)

// Options configure a Manager.
type Options struct {
	// ACME are the acme blocks of the configuration.
	ACME []config.ACME
	// Certs is where certificates are served from; required.
	Certs  *tlsmux.CertStore
	Logger *slog.Logger
	// RetryBase and RetryMax bound the exponential back-off after failed
	// issuances; 0 means DefaultRetryBase and DefaultRetryMax.
	RetryBase, RetryMax time.Duration
}

// Manager runs the acme blocks of one configuration.
type Manager struct {
	log     *slog.Logger
	certs   *tlsmux.CertStore
	chal    *challenges
	issuers []*issuer
	byName  map[string]*issuer // configured domain -> its issuer
	od      *onDemand          // nil without an on_demand block

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	bgMu   sync.Mutex // orders wg.Go after Close's Wait
	closed bool

	missMu     sync.Mutex
	missAt     map[string]time.Time // when a refused handshake was last logged, per name
	removeMiss func()

	// prefix makes this manager's keys in the store its own: after a
	// reload the store may hold the next manager's certificates too.
	prefix string
	keysMu sync.Mutex
	keys   map[string]bool // keys set in the store, removed by Close
}

// missLogEvery bounds the "no certificate yet" log lines of one name.
const missLogEvery = time.Minute

// New prepares the storage of every acme block and serves the
// certificates stored there at once; it talks to no CA. An unusable
// storage directory is an error.
func New(o Options) (*Manager, error) {
	if o.Certs == nil {
		return nil, fmt.Errorf("acme: no certificate store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{log: o.Logger, certs: o.Certs, chal: newChallenges(), byName: map[string]*issuer{},
		ctx: ctx, cancel: cancel, missAt: map[string]time.Time{}, keys: map[string]bool{}}
	m.prefix = fmt.Sprintf("%p/", m)
	loaded := map[string]*tls.Certificate{}
	for i := range o.ACME {
		is, err := newIssuer(m, &o.ACME[i], o.RetryBase, o.RetryMax, loaded)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("tls: acme %q: %w", o.ACME[i].Name, err)
		}
		m.issuers = append(m.issuers, is)
		for _, d := range is.domains {
			m.byName[d.name] = is
		}
	}
	for _, is := range m.issuers {
		if is.cfg.OnDemand != nil {
			m.od = newOnDemand(is)
			m.od.loadStored(m.byName, loaded)
		}
	}
	if len(loaded) > 0 {
		if err := m.setManaged(loaded); err != nil {
			cancel()
			return nil, err
		}
	}
	m.removeMiss = m.certs.OnMiss(m.miss)
	return m, nil
}

// setManaged puts certificates in the store and remembers their keys.
func (m *Manager) setManaged(certs map[string]*tls.Certificate) error {
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if err := m.certs.SetManaged(certs); err != nil {
		return err
	}
	for k := range certs {
		m.keys[k] = true
	}
	return nil
}

// Start begins obtaining and renewing in the background; call it once
// the entrypoints are listening, so that the CA's validations find them.
func (m *Manager) Start() {
	m.once.Do(func() {
		for _, is := range m.issuers {
			m.wg.Go(func() { is.run(m.ctx) })
		}
	})
}

// Close stops the background work, aborting requests to CAs in flight,
// waits for it, and removes its certificates from the store (a reload's
// new manager has put its own there by then).
func (m *Manager) Close() {
	m.once.Do(func() {}) // a Start after Close starts nothing
	m.removeMiss()
	m.bgMu.Lock()
	m.closed = true
	m.bgMu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	drop := make(map[string]*tls.Certificate, len(m.keys))
	for k := range m.keys {
		drop[k] = nil
	}
	if len(drop) > 0 {
		_ = m.certs.SetManaged(drop) // nil values cannot fail
	}
}

// goBackground runs f in a goroutine that Close waits for; after Close it
// runs nothing and reports false.
func (m *Manager) goBackground(f func()) bool {
	m.bgMu.Lock()
	defer m.bgMu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Go(f)
	return true
}

// Challenges answers tls-alpn-01 validations; give it to every tlsmux.Mux.
func (m *Manager) Challenges() tlsmux.ALPNChallenges { return m.chal }

// HTTPHandler wraps the handler of an entrypoint so that http-01
// validations are answered before routing and middlewares (a redirect to
// HTTPS must not hide them).
func (m *Manager) HTTPHandler(next http.Handler) http.Handler { return m.chal.handler(next) }

// miss is the certificate store's MissFunc: a configured name without a
// certificate yet is logged, once a minute per name; another name may be
// obtained on demand.
func (m *Manager) miss(ctx context.Context, name string) *tls.Certificate {
	is := m.byName[name]
	if is == nil {
		if m.od != nil {
			return m.od.get(ctx, name)
		}
		return nil
	}
	now := time.Now()
	m.missMu.Lock()
	last, seen := m.missAt[name]
	if seen && now.Sub(last) < missLogEvery {
		m.missMu.Unlock()
		return nil
	}
	m.missAt[name] = now
	m.missMu.Unlock()
	m.log.Warn("no certificate yet for this name; ACME issuance in progress: the default certificate is served, or the handshake is refused without one",
		"acme", is.cfg.Name, "domain", name)
	return nil
}
