//go:build linux

package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	quic "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// passthroughSetup is proxynow with one http3 entrypoint that terminates
// t.test and passes p.test through to a quic-go HTTP/3 backend holding
// its own certificate.
type passthroughSetup struct {
	p         *proc
	addr      string
	proxyCA   *testCA
	backendCA *testCA
	backLeaf  *leafCert
	h3        *h3Backend
	app       *httpBackend
}

func startPassthrough(t *testing.T) *passthroughSetup {
	t.Helper()
	s := &passthroughSetup{proxyCA: newTestCA(t, "proxy"), backendCA: newTestCA(t, "backend")}
	s.backLeaf = s.backendCA.issue(t, t.TempDir(), "p", "p.test")
	s.h3 = startH3Backend(t, s.backLeaf, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Peer", r.RemoteAddr) // proxynow's flow socket toward the backend
		io.WriteString(w, "passthrough "+r.URL.Path)
	})
	s.app = startHTTPBackend(t, "terminated")
	s.p = startProxy(t, h3TLS(t, s.proxyCA)+hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
quic_route "pass" {
  entrypoints = ["web"]
  sni         = ["p.test"]
  service     = "quicpass"
}
service "quicpass" {
  backend %q {}
}
http_route "app" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "http://%s" {}
}
`, s.h3.addr, s.app.addr))
	s.addr = s.p.addr("web")
	return s
}

// TestQUICPassthrough: SNI p.test is relayed untouched (the client sees
// the backend's certificate), t.test is terminated by proxynow, on the
// same UDP port, by 50 concurrent clients.
func TestQUICPassthrough(t *testing.T) {
	s := startPassthrough(t)

	t.Run("backend certificate", func(t *testing.T) {
		r, err := newH3Client(t, s.backendCA, "p.test").Get("https://" + s.addr + "/cert")
		if err != nil {
			t.Fatalf("p.test: %v", err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(body) != "passthrough /cert" || r.TLS == nil || !bytes.Equal(r.TLS.PeerCertificates[0].Raw, s.backLeaf.der) {
			t.Fatalf("p.test: %q, served %s, want the backend's %s", body, sha256Fingerprint(r.TLS.PeerCertificates[0].Raw), sha256Fingerprint(s.backLeaf.der))
		}
	})

	t.Run("50 clients both ways", func(t *testing.T) {
		const clients, requests = 50, 4
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name, ca, want := "t.test", s.proxyCA, "terminated"
				if i%2 == 0 {
					name, ca, want = "p.test", s.backendCA, "passthrough /c"
				}
				tr := &http3.Transport{
					TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: name},
					QUICConfig:      &quic.Config{HandshakeIdleTimeout: 20 * time.Second},
				}
				defer tr.Close()
				c := &http.Client{Transport: tr, Timeout: ioTimeout}
				for j := range requests {
					r, err := c.Get("https://" + s.addr + "/c")
					if err != nil {
						errs <- fmt.Errorf("client %d (%s) request %d: %w", i, name, j, err)
						return
					}
					body, err := io.ReadAll(r.Body)
					r.Body.Close()
					if err != nil || string(body) != want {
						errs <- fmt.Errorf("client %d (%s) request %d: %q, %v; want %q", i, name, j, body, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := s.h3.count.Load(); got < clients/2*requests {
			t.Errorf("the passthrough backend answered %d requests, want at least %d", got, clients/2*requests)
		}
	})
}

// TestQUICPassthroughMigration: a passthrough client whose address
// changes mid-connection (a NAT rebinding) keeps its connection: proxynow
// finds the flow by the connection ID the backend chose.
func TestQUICPassthroughMigration(t *testing.T) {
	s := startPassthrough(t)
	relay := startUDPRelay(t, s.addr)
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.backendCA.pool(), ServerName: "p.test"},
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 20 * time.Second},
	}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: ioTimeout}
	var peer string
	for i := range 4 {
		// Rebind right after the first request: quic-go sends its first
		// 1-RTT packet, with a connection ID the backend issued in an
		// encrypted frame, coalesced behind its last Handshake packet, and
		// proxynow must learn that ID from there.
		if i > 0 {
			before := relay.backAddr()
			if err := relay.rebind(); err != nil {
				t.Fatal(err)
			}
			t.Logf("rebound %s -> %s", before, relay.backAddr())
		}
		r, err := c.Get("https://" + relay.addr() + fmt.Sprintf("/m%d", i))
		if err != nil {
			t.Fatalf("request %d after %d rebindings: %v", i, i, err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if want := fmt.Sprintf("passthrough /m%d", i); string(body) != want {
			t.Fatalf("request %d: %q, want %q", i, body, want)
		}
		// One flow throughout: had proxynow lost the connection, quic-go
		// would have redialed, and a new flow reaches the backend from a
		// new socket.
		if i == 0 {
			peer = r.Header.Get("X-Peer")
		} else if got := r.Header.Get("X-Peer"); got != peer {
			t.Fatalf("request %d came over a new flow (backend saw %s, then %s): the connection did not survive the rebinding", i, peer, got)
		}
	}
	if got := s.h3.count.Load(); got != 4 {
		t.Fatalf("backend answered %d requests, want 4", got)
	}
}
