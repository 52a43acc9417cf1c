package server

import (
	"net/http"

	"github.com/proxynow/proxynow/tlsmux"
	"github.com/proxynow/proxynow/tlsmux/acme"
)

// setupACME creates the ACME manager of the acme blocks, and a
// certificate store for it when no certificate file is configured. The
// certificates already in storage are served from the first handshake.
func (s *Server) setupACME() error {
	if len(s.cfg.TLS.ACME) == 0 {
		return nil
	}
	if s.certs == nil {
		certs, err := tlsmux.NewCertStore(nil, s.log)
		if err != nil {
			return err
		}
		s.certs = certs
	}
	m, err := acme.New(acme.Options{ACME: s.cfg.TLS.ACME, Certs: s.certs, Logger: s.log})
	if err != nil {
		return err
	}
	s.acme = m
	return nil
}

// acmeHandler answers http-01 validations ahead of h. Every entrypoint
// that serves HTTP gets it, as Caddy does on its HTTP port: the CA
// connects to port 80, and which entrypoint that is depends on port
// mappings proxynow cannot see. Tokens that are not proxynow's go on to h.
func (s *Server) acmeHandler(h http.Handler) http.Handler {
	if s.acme == nil {
		return h
	}
	return s.acme.HTTPHandler(h)
}

// acmeChallenges answers tls-alpn-01 validations on every TLS entrypoint.
func (s *Server) acmeChallenges() tlsmux.ALPNChallenges {
	if s.acme == nil {
		return nil
	}
	return s.acme.Challenges()
}

// startACME begins issuance once the entrypoints listen.
func (s *Server) startACME() {
	if s.acme != nil {
		s.acme.Start()
	}
}

func (s *Server) stopACME() {
	if s.acme != nil {
		s.acme.Close()
	}
}
