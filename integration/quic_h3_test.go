//go:build linux

package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/crypto/bcrypt"
)

// h3TLS is the tls block of the HTTP/3 tests: one certificate for t.test.
func h3TLS(t testing.TB, ca *testCA) string {
	t.Helper()
	leaf := ca.issue(t, t.TempDir(), "t", "t.test")
	return hcl(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}
`, leaf.certFile, leaf.keyFile)
}

// newH1TLSClient is net/http over TLS limited to HTTP/1.1.
func newH1TLSClient(t testing.TB, ca *testCA, serverName string) *http.Client {
	t.Helper()
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{RootCAs: ca.pool(), ServerName: serverName},
		Protocols:          &protos,
		DisableCompression: true,
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout, CheckRedirect: noRedirect}
}

// TestHTTP3Fetch: quic-go's HTTP/3 client and ngtcp2's gtlsclient fetch a
// route through proxynow; the backend sees the QUIC peer as the client.
func TestHTTP3Fetch(t *testing.T) {
	ca := newTestCA(t, "h3")
	be := startHTTPBackend(t, "app")
	p := startH3Proxy(t, ca, be.addr)
	addr := p.addr("web")

	t.Run("quic-go", func(t *testing.T) {
		r := mustDo(t, newH3Client(t, ca, "t.test"), "https://"+addr, reqSpec{path: "/hello"})
		if r.status != 200 || r.proto != 3 || r.body != "app" {
			t.Fatalf("got %d HTTP/%d %q", r.status, r.proto, r.body)
		}
		seen, _ := be.last()
		if got := seen.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("backend saw X-Forwarded-For %q, want the QUIC peer 127.0.0.1", got)
		}
		if got := seen.Header.Get("Via"); got != "3 proxynow" {
			t.Errorf("backend saw Via %q", got)
		}
		if got := seen.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("backend saw X-Forwarded-Proto %q", got)
		}
	})
	t.Run("gtlsclient", func(t *testing.T) {
		body, err := gtlsFetch(t, addr, "t.test", "/ngtcp2")
		if err != nil {
			t.Fatalf("gtlsclient: %v\n%s", err, body)
		}
		if body != "app" {
			t.Fatalf("gtlsclient body %q", body)
		}
		seen, _ := be.last()
		if seen.URI != "/ngtcp2" {
			t.Fatalf("backend saw %q", seen.URI)
		}
	})
}

// TestHTTP3SameBehaviour runs one table over HTTP/1.1, HTTP/2 and HTTP/3
// on one entrypoint: middlewares and the circuit breaker answer alike.
func TestHTTP3SameBehaviour(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, "h3")
	be := startHTTPBackend(t, "app")
	failing := startHTTPBackend(t, "failing")
	failing.status.Store(500)
	kinds := []string{"h1", "h2", "h3"}
	var breakers strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&breakers, `
http_route "brk_%[1]s" {
  entrypoints = ["web"]
  path_prefix = "/breaker/%[1]s"
  service     = "brk_%[1]s"
}
service "brk_%[1]s" {
  backend "http://%[2]s" {}
  circuit_breaker {
    min_requests  = 3
    failure_ratio = 0.5
    interval      = "60s"
    open_timeout  = "60s"
  }
}
`, k, failing.addr)
	}
	p := startProxy(t, h3TLS(t, ca)+hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "hdr" {
  entrypoints = ["web"]
  path_prefix = "/hdr"
  middlewares = ["hdr"]
  service     = "app"
}
http_route "auth" {
  entrypoints = ["web"]
  path_prefix = "/auth"
  middlewares = ["auth"]
  service     = "app"
}
http_route "lan" {
  entrypoints = ["web"]
  path_prefix = "/lan"
  middlewares = ["lan"]
  service     = "app"
}
http_route "wan" {
  entrypoints = ["web"]
  path_prefix = "/wan"
  middlewares = ["wan"]
  service     = "app"
}
http_route "limit" {
  entrypoints = ["web"]
  path_prefix = "/limit"
  middlewares = ["limit"]
  service     = "app"
}
middleware "hdr" {
  headers {
    request {
      set    = { "X-Via-Chain" = "1" }
      remove = ["X-Secret"]
    }
    response {
      set = { "X-Frame-Options" = "DENY" }
    }
  }
}
middleware "auth" {
  basic_auth {
    users        = ["alice:%s"]
    header_field = "X-User"
  }
}
middleware "lan" {
  ip_allow {
    cidrs = ["127.0.0.0/8"]
  }
}
middleware "wan" {
  ip_allow {
    cidrs = ["192.0.2.0/24"]
  }
}
middleware "limit" {
  rate_limit {
    average = 2
    burst   = 2
    period  = "1m"
    key     = "header:X-Proto"
  }
}
service "app" {
  backend "http://%s" {}
}
%s`, hash, be.addr, breakers.String()))
	base := "https://" + p.addr("web")
	clients := map[string]*http.Client{
		"h1": newH1TLSClient(t, ca, "t.test"),
		"h2": newH2TLSClient(t, ca, "t.test"),
		"h3": newH3Client(t, ca, "t.test"),
	}
	protoOf := map[string]int{"h1": 1, "h2": 2, "h3": 3}
	tests := []struct {
		name  string
		check func(t *testing.T, kind string, c *http.Client)
	}{
		{"headers both ways", func(t *testing.T, kind string, c *http.Client) {
			r := mustDo(t, c, base, reqSpec{path: "/hdr/" + kind, header: map[string]string{"X-Secret": "leak"}})
			if r.status != 200 || r.header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("%d X-Frame-Options %q", r.status, r.header.Get("X-Frame-Options"))
			}
			seen, _ := be.last()
			if seen.URI != "/hdr/"+kind || seen.Header.Get("X-Via-Chain") != "1" || seen.Header.Get("X-Secret") != "" {
				t.Fatalf("backend saw %s X-Via-Chain %q X-Secret %q", seen.URI, seen.Header.Get("X-Via-Chain"), seen.Header.Get("X-Secret"))
			}
		}},
		{"basic_auth refuses", func(t *testing.T, kind string, c *http.Client) {
			r := mustDo(t, c, base, reqSpec{path: "/auth/" + kind})
			if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("%d WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
			}
		}},
		{"basic_auth admits", func(t *testing.T, kind string, c *http.Client) {
			r := mustDo(t, c, base, reqSpec{path: "/auth/" + kind, header: map[string]string{"Authorization": "Basic YWxpY2U6czNjcmV0"}})
			seen, _ := be.last()
			if r.status != 200 || seen.Header.Get("X-User") != "alice" || seen.Header.Get("Authorization") != "" {
				t.Fatalf("%d, backend saw X-User %q", r.status, seen.Header.Get("X-User"))
			}
		}},
		{"ip_allow sees the peer address", func(t *testing.T, kind string, c *http.Client) {
			if r := mustDo(t, c, base, reqSpec{path: "/lan"}); r.status != 200 {
				t.Fatalf("127.0.0.0/8 allowed: %d", r.status)
			}
			if r := mustDo(t, c, base, reqSpec{path: "/wan"}); r.status != 403 {
				t.Fatalf("192.0.2.0/24 allowed only: %d, want 403", r.status)
			}
		}},
		{"oversized headers get 431", func(t *testing.T, kind string, c *http.Client) {
			r, err := do(c, base, reqSpec{path: "/hdr/big", header: map[string]string{"X-Big": strings.Repeat("b", 80<<10)}})
			if kind == "h2" && err != nil && strings.Contains(err.Error(), "larger than peer's advertised limit") {
				return // Go's HTTP/2 client enforces the limit proxynow advertised (SETTINGS_MAX_HEADER_LIST_SIZE)
			}
			if err != nil {
				t.Fatalf("oversized headers: %v", err)
			}
			if r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("oversized headers: %d, want 431", r.status)
			}
		}},
		{"rate_limit answers 429", func(t *testing.T, kind string, c *http.Client) {
			spec := reqSpec{path: "/limit", header: map[string]string{"X-Proto": kind}}
			for i := range 2 {
				if r := mustDo(t, c, base, spec); r.status != 200 {
					t.Fatalf("request %d within the burst: %d", i+1, r.status)
				}
			}
			r := mustDo(t, c, base, spec)
			if r.status != 429 || r.header.Get("Retry-After") == "" {
				t.Fatalf("over the limit: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
			}
		}},
		{"breaker opens to 503", func(t *testing.T, kind string, c *http.Client) {
			var last result
			for i := range 20 {
				last = mustDo(t, c, base, reqSpec{path: "/breaker/" + kind})
				if last.status == 503 {
					break
				}
				if last.status != 500 {
					t.Fatalf("request %d: %d, want the backend's 500", i+1, last.status)
				}
			}
			if last.status != 503 || last.header.Get("Retry-After") == "" {
				t.Fatalf("breaker never opened: %d Retry-After %q", last.status, last.header.Get("Retry-After"))
			}
		}},
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.check(t, kind, clients[kind])
				})
			}
			r := mustDo(t, clients[kind], base, reqSpec{path: "/hdr"})
			if r.proto != protoOf[kind] {
				t.Fatalf("spoke HTTP/%d, want HTTP/%d", r.proto, protoOf[kind])
			}
		})
	}
}

// TestHTTP3AltSvc: HTTP/1.1 and HTTP/2 responses of an http3 entrypoint
// advertise h3 on its port (or http3_advertised_port); other entrypoints
// and HTTP/3 responses do not.
func TestHTTP3AltSvc(t *testing.T) {
	ca := newTestCA(t, "h3")
	be := startHTTPBackend(t, "app")
	p := startProxy(t, h3TLS(t, ca)+hcl(`
entrypoint "h3" {
  address = "127.0.0.1:0"
  http3   = true
}
entrypoint "mapped" {
  address               = "127.0.0.1:0"
  http3                 = true
  http3_advertised_port = 443
}
entrypoint "plain_tls" {
  address = "127.0.0.1:0"
}
http_route "app" {
  entrypoints = ["h3", "mapped", "plain_tls"]
  service     = "app"
}
service "app" {
  backend "http://%s" {}
}
`, be.addr))
	_, port, _ := net.SplitHostPort(p.addr("h3"))
	tests := []struct {
		ep, kind, want string
	}{
		{"h3", "h1", `h3=":` + port + `"; ma=86400`},
		{"h3", "h2", `h3=":` + port + `"; ma=86400`},
		{"h3", "h3", ""},
		{"mapped", "h1", `h3=":443"; ma=86400`},
		{"mapped", "h2", `h3=":443"; ma=86400`},
		{"plain_tls", "h1", ""},
		{"plain_tls", "h2", ""},
	}
	clients := map[string]*http.Client{
		"h1": newH1TLSClient(t, ca, "t.test"),
		"h2": newH2TLSClient(t, ca, "t.test"),
		"h3": newH3Client(t, ca, "t.test"),
	}
	for _, tc := range tests {
		t.Run(tc.ep+"/"+tc.kind, func(t *testing.T) {
			r := mustDo(t, clients[tc.kind], "https://"+p.addr(tc.ep), reqSpec{})
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if got := r.header.Values("Alt-Svc"); strings.Join(got, ",") != tc.want {
				t.Fatalf("Alt-Svc %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHTTP3CertificateReload: renewed certificate files are served to new
// HTTP/3 handshakes without a restart, as on TCP.
func TestHTTP3CertificateReload(t *testing.T) {
	ca := newTestCA(t, "h3")
	leaf1 := ca.issue(t, t.TempDir(), "t", "t.test")
	p := startProxy(t, hcl(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "app" {
  entrypoints = ["web"]
  service     = "hello"
}
service "hello" {
  respond {
    body = "hello"
  }
}
`, leaf1.certFile, leaf1.keyFile))
	addr := p.addr("web")
	served := func() ([]byte, error) {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "t.test"}}
		defer tr.Close()
		r, err := (&http.Client{Transport: tr, Timeout: ioTimeout}).Get("https://" + addr + "/")
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		return r.TLS.PeerCertificates[0].Raw, nil
	}
	if got, err := served(); err != nil || !bytes.Equal(got, leaf1.der) {
		t.Fatalf("initial certificate: %v (%s)", err, sha256Fingerprint(got))
	}
	leaf2 := ca.issuePEM(t, "t.test")
	writeFileAtomic(t, leaf1.keyFile, leaf2.keyPEM)
	writeFileAtomic(t, leaf1.certFile, leaf2.certPEM)
	deadline := time.Now().Add(ioTimeout)
	for {
		got, err := served()
		if err == nil && bytes.Equal(got, leaf2.der) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served over HTTP/3 (last %s, %v)", sha256Fingerprint(got), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
