package tlsmux

import (
	"context"
	"crypto/tls"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxynow/proxynow/l4"
)

// fixedChallenges has a pending tls-alpn-01 validation for one name.
type fixedChallenges struct {
	name string
	cert *tls.Certificate
}

func (f fixedChallenges) ChallengeCert(n string) *tls.Certificate {
	if n == f.name {
		return f.cert
	}
	return nil
}

// TestALPNChallengeBeforeRoutes: a ClientHello offering acme-tls/1 for a
// name with a pending validation is answered with the challenge
// certificate even though a passthrough catch-all would take it; the same
// hello for another name goes to the route.
func TestALPNChallengeBeforeRoutes(t *testing.T) {
	ca := newCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), "ecdsa", "a.test")
	cert := serverCert(t, certFile, keyFile)
	var routed atomic.Int64
	pass := l4.HandlerFunc(func(_ context.Context, c *l4.Conn) { routed.Add(1); c.Close() })
	addr, _ := startMux(t, Options{
		Routes:     []Route{{Name: "all", Mode: Passthrough, Handler: pass}},
		Challenges: fixedChallenges{name: "a.test", cert: &cert},
	})
	c, err := dialTLS(t, addr, &tls.Config{ServerName: "A.Test.", RootCAs: ca.pool, NextProtos: []string{ACMETLS1}})
	if err != nil {
		t.Fatalf("validation handshake: %v", err)
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != ACMETLS1 {
		t.Errorf("negotiated %q, want %q", got, ACMETLS1)
	}
	c.Close()
	if routed.Load() != 0 {
		t.Error("the validation reached the passthrough route")
	}
	if c, err := dialTLS(t, addr, &tls.Config{ServerName: "b.test", InsecureSkipVerify: true, NextProtos: []string{ACMETLS1}}); err == nil {
		c.Close()
		t.Error("acme-tls/1 for a name without a validation was answered")
	}
	deadline := time.Now().Add(10 * time.Second)
	for routed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if routed.Load() != 1 {
		t.Error("acme-tls/1 for another name did not go to its route")
	}
}
