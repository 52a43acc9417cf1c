package server

import (
	"encoding/json"
	"net/http"

	"github.com/proxynow/proxynow/tlsmux"
	"github.com/proxynow/proxynow/tlsmux/acme"
)

// setupACME gives the generation the ACME manager of its acme blocks:
// the previous generation's when the blocks and the certificate store are
// the same (issuance and renewal timers go on undisturbed), else a new
// one on this generation's store, which serves what is in storage at once;
// the old one is closed when its generation retires, removing its
// certificates from a store that outlives it.
func (g *generation) setupACME() error {
	if len(g.cfg.TLS.ACME) == 0 {
		return nil
	}
	prev := g.prev
	if prev.acme != nil && prev.certs == g.certs && sameACME(prev, g) {
		g.acme = prev.acme
		return nil
	}
	m, err := acme.New(acme.Options{ACME: g.cfg.TLS.ACME, Certs: g.certs, Logger: g.s.log})
	if err != nil {
		return err
	}
	g.acme = m
	return nil
}

func sameACME(a, b *generation) bool {
	x, err1 := json.Marshal(a.cfg.TLS.ACME)
	y, err2 := json.Marshal(b.cfg.TLS.ACME)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// acmeHandler answers http-01 validations ahead of h. Every entrypoint
// that serves HTTP gets it, as Caddy does on its HTTP port: the CA
// connects to port 80, and which entrypoint that is depends on port
// mappings proxynow cannot see. Tokens that are not proxynow's go on to h.
func (g *generation) acmeHandler(h http.Handler) http.Handler {
	if g.acme == nil {
		return h
	}
	return g.acme.HTTPHandler(h)
}

// acmeChallenges answers tls-alpn-01 validations on every TLS entrypoint.
func (g *generation) acmeChallenges() tlsmux.ALPNChallenges {
	if g.acme == nil {
		return nil
	}
	return g.acme.Challenges()
}

// startACME begins issuance once the generation's entrypoints listen; a
// manager taken over from the previous generation is running already.
func (g *generation) startACME() {
	if g.acme != nil {
		g.acme.Start()
	}
}
