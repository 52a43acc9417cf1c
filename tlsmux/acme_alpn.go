package tlsmux

import (
	"context"
	"crypto/tls"

	"github.com/proxynow/proxynow/l4"
)

// ACMETLS1 is the ALPN protocol of the ACME tls-alpn-01 challenge
// (RFC 8737, section 6.2).
const ACMETLS1 = "acme-tls/1"

// ALPNChallenges answers ACME tls-alpn-01 validations (RFC 8737).
type ALPNChallenges interface {
	// ChallengeCert returns the self-signed challenge certificate of a
	// validation pending for serverName (lower case, without a trailing
	// dot), or nil when none is.
	ChallengeCert(serverName string) *tls.Certificate
}

// answerChallenge completes the handshake of a CA's tls-alpn-01
// validation and closes the connection (RFC 8737, section 3: the CA
// closes it after the handshake; no application data follows). It
// reports false, leaving c untouched, when the ClientHello is not one, or
// when no validation of ours is pending for its name: a passthrough
// backend may be answering its own ACME challenges.
func (m *Mux) answerChallenge(ctx context.Context, c *l4.Conn, h *ClientHello) bool {
	if !h.OffersALPN(ACMETLS1) {
		return false
	}
	var buf [256]byte
	cert := m.challenges.ChallengeCert(string(lowerName(buf[:0], h.ServerName)))
	if cert == nil {
		return false
	}
	tc := tls.Server(c, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{ACMETLS1},
	})
	hctx, cancel := context.WithTimeout(ctx, m.timeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	m.log.Debug("ACME tls-alpn-01 validation answered", "entrypoint", m.entrypoint, "client", c.Client,
		"sni", string(h.ServerName), "error", err)
	c.Close()
	return true
}
