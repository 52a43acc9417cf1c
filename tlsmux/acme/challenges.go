package acme

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"

	"github.com/proxynow/proxynow/tlsmux"
)

// challenges holds the validations in progress of every acme block: the
// http-01 key authorizations by token and the tls-alpn-01 certificates by
// domain. lego's solvers Present and CleanUp them; the entrypoints read
// them.
type challenges struct {
	mu   sync.RWMutex
	http map[string]string // token -> key authorization
	alpn map[string]*tls.Certificate
}

func newChallenges() *challenges {
	return &challenges{http: map[string]string{}, alpn: map[string]*tls.Certificate{}}
}

var _ tlsmux.ALPNChallenges = (*challenges)(nil)

// ChallengeCert implements tlsmux.ALPNChallenges.
func (c *challenges) ChallengeCert(serverName string) *tls.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.alpn[serverName]
}

// handler answers http-01 validations at /.well-known/acme-challenge/ and
// gives every other request, and tokens not ours, to next: a backend may
// run its own ACME client for names proxynow does not manage.
func (c *challenges) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, http01.PathPrefix)
		if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		c.mu.RLock()
		keyAuth, ok := c.http[token]
		c.mu.RUnlock()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(keyAuth))
	})
}

// httpProvider is lego's challenge.Provider for http-01.
type httpProvider struct{ c *challenges }

var _ challenge.Provider = httpProvider{}

func (p httpProvider) Present(_, token, keyAuth string) error {
	p.c.mu.Lock()
	p.c.http[token] = keyAuth
	p.c.mu.Unlock()
	return nil
}

func (p httpProvider) CleanUp(_, token, _ string) error {
	p.c.mu.Lock()
	delete(p.c.http, token)
	p.c.mu.Unlock()
	return nil
}

// alpnProvider is lego's challenge.Provider for tls-alpn-01.
type alpnProvider struct{ c *challenges }

var _ challenge.Provider = alpnProvider{}

func (p alpnProvider) Present(domain, _, keyAuth string) error {
	cert, err := tlsalpn01.ChallengeCert(domain, keyAuth)
	if err != nil {
		return err
	}
	p.c.mu.Lock()
	p.c.alpn[strings.ToLower(domain)] = cert
	p.c.mu.Unlock()
	return nil
}

func (p alpnProvider) CleanUp(domain, _, _ string) error {
	p.c.mu.Lock()
	delete(p.c.alpn, strings.ToLower(domain))
	p.c.mu.Unlock()
	return nil
}
