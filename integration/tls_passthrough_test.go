//go:build linux

package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTLSPassthrough routes a.test by SNI to nginx without decrypting: the
// client sees nginx's own certificate and nginx's answers.
func TestTLSPassthrough(t *testing.T) {
	ng := startNginx(t, true)
	p := startProxy(t, hcl(`
entrypoint "tls" {
  address = "127.0.0.1:0"
}
tcp_route "a" {
  entrypoints = ["tls"]
  sni         = ["a.test"]
  tls         = "passthrough"
  service     = "nginx"
}
service "nginx" {
  backend %q {}
}
`, ng.addr))
	addr := p.addr("tls")
	_, port, _ := net.SplitHostPort(addr)

	t.Run("openssl s_client sees nginx's certificate", func(t *testing.T) {
		fp, out := sClientFingerprint(t, addr, "a.test")
		if want := sha256Fingerprint(ng.leaf.der); fp != want {
			t.Fatalf("served certificate fingerprint %q, want nginx's %q; s_client output:\n%s", fp, want, tail(out, 3000))
		}
		if !strings.Contains(out, "Verify return code") {
			t.Errorf("s_client did not complete a handshake:\n%s", tail(out, 3000))
		}
	})

	t.Run("Go client sees nginx's leaf", func(t *testing.T) {
		c, err := tlsDial(addr, &tls.Config{ServerName: "a.test", RootCAs: ng.ca.pool()})
		if err != nil {
			t.Fatalf("handshake through proxynow verifying nginx's CA: %v", err)
		}
		defer c.Close()
		if got := c.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, ng.leaf.der) {
			t.Fatalf("leaf %s, want nginx's %s", sha256Fingerprint(got), sha256Fingerprint(ng.leaf.der))
		}
		code, body, err := httpGetOver(c, "a.test")
		if err != nil || code != 200 || body != "nginx-a\n" {
			t.Fatalf("GET over passthrough: %d %q %v, want 200 \"nginx-a\\n\"", code, body, err)
		}
	})

	curl := func(t *testing.T, extra ...string) string {
		t.Helper()
		bin := requireTool(t, "curl")
		args := append([]string{"-sS", "--max-time", "15", "--cacert", ng.ca.file,
			"--resolve", "a.test:" + port + ":127.0.0.1", "-w", "\n%{http_version}"}, extra...)
		args = append(args, "https://a.test:"+port+"/")
		out, err := runToolOutput(t, nil, bin, args...)
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return out
	}

	t.Run("curl HTTP/1.1 end to end", func(t *testing.T) {
		out := curl(t, "--http1.1")
		if out != "nginx-a\n\n1.1" {
			t.Fatalf("curl output %q, want nginx's body over HTTP/1.1", out)
		}
	})

	t.Run("curl HTTP/2 end to end", func(t *testing.T) {
		v, _ := runToolOutput(t, nil, requireTool(t, "curl"), "-V")
		requireToolFeature(t, strings.Contains(v, "HTTP2"), "curl with HTTP2")
		out := curl(t, "--http2")
		if out != "nginx-a\n\n2" {
			t.Fatalf("curl --http2 output %q, want nginx's body over HTTP/2", out)
		}
	})
}

// TestTLSTwoRoutes serves a.test passthrough (nginx) and b.test terminated
// (echo) on one port to 200 concurrent clients.
func TestTLSTwoRoutes(t *testing.T) {
	ng := startNginx(t, false)
	echoBE := startTCPBackend(t, echo)
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leafB := ca.issue(t, dir, "b", "b.test")
	p := startProxy(t, hcl(`
tls {
  certificate "b" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "tls" {
  address = "127.0.0.1:0"
}
tcp_route "a" {
  entrypoints = ["tls"]
  sni         = ["a.test"]
  tls         = "passthrough"
  service     = "nginx"
}
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test"]
  tls         = "terminate"
  service     = "echo"
}
service "nginx" {
  backend %q {}
}
service "echo" {
  backend %q {}
}
`, leafB.certFile, leafB.keyFile, ng.addr, echoBE.addr))
	addr := p.addr("tls")

	const clients, parallel = 200, 50
	sem := make(chan struct{}, parallel)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if i%2 == 0 {
				errs <- func() error {
					c, err := tlsDial(addr, &tls.Config{ServerName: "a.test", RootCAs: ng.ca.pool()})
					if err != nil {
						return fmt.Errorf("client %d a.test: handshake: %w", i, err)
					}
					defer c.Close()
					if !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, ng.leaf.der) {
						return fmt.Errorf("client %d a.test: not nginx's certificate", i)
					}
					code, body, err := httpGetOver(c, "a.test")
					if err != nil || code != 200 || body != "nginx-a\n" {
						return fmt.Errorf("client %d a.test: GET: %d %q %v", i, code, body, err)
					}
					return nil
				}()
				return
			}
			errs <- func() error {
				c, err := tlsDial(addr, &tls.Config{ServerName: "b.test", RootCAs: ca.pool()})
				if err != nil {
					return fmt.Errorf("client %d b.test: handshake: %w", i, err)
				}
				defer c.Close()
				if !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, leafB.der) {
					return fmt.Errorf("client %d b.test: not proxynow's b certificate", i)
				}
				msg := fmt.Sprintf("client %d says hello\n", i)
				if got, err := roundTrip(c, msg); err != nil || got != msg {
					return fmt.Errorf("client %d b.test: echo: %q %v", i, got, err)
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	var failed int
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 10 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients failed", failed, clients)
	}
	if n := echoBE.accepted.Load(); n != clients/2 {
		t.Errorf("echo backend accepted %d connections, want %d", n, clients/2)
	}
}

// TestTLSALPN routes a.test+x-custom to one backend and other a.test
// clients to the route without alpn.
func TestTLSALPN(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	proxyLeaf := ca.issue(t, dir, "a", "a.test")
	// The route without alpn passes through to a TLS backend with its own
	// certificate for the same name, so the two routes serve different
	// certificates.
	beCA := newTestCA(t, "backend")
	beLeaf := beCA.issuePEM(t, "a.test")
	plainBE := startTCPBackend(t, tlsGreetEcho(t, beLeaf.tlsCert(t), "default\n", "h2", "http/1.1"))
	customBE := startTCPBackend(t, greetEcho("custom\n"))
	p := startProxy(t, hcl(`
tls {
  certificate "a" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "tls" {
  address = "127.0.0.1:0"
}
tcp_route "custom" {
  entrypoints = ["tls"]
  sni         = ["a.test"]
  alpn        = ["x-custom"]
  tls         = "terminate"
  service     = "custom"
}
tcp_route "plain" {
  entrypoints = ["tls"]
  sni         = ["a.test"]
  tls         = "passthrough"
  service     = "default"
}
service "custom" {
  backend %q {}
}
service "default" {
  backend %q {}
}
`, proxyLeaf.certFile, proxyLeaf.keyFile, customBE.addr, plainBE.addr))
	addr := p.addr("tls")

	t.Run("openssl -alpn x-custom", func(t *testing.T) {
		fp, out := sClientFingerprint(t, addr, "a.test", "-alpn", "x-custom")
		if want := sha256Fingerprint(proxyLeaf.der); fp != want {
			t.Fatalf("certificate %q, want proxynow's (x-custom route) %q:\n%s", fp, want, tail(out, 3000))
		}
		if !strings.Contains(out, "ALPN protocol: x-custom") {
			t.Errorf("x-custom not negotiated:\n%s", tail(out, 3000))
		}
	})

	t.Run("openssl without alpn", func(t *testing.T) {
		fp, out := sClientFingerprint(t, addr, "a.test")
		if want := sha256Fingerprint(beLeaf.der); fp != want {
			t.Fatalf("certificate %q, want the backend's (route without alpn) %q:\n%s", fp, want, tail(out, 3000))
		}
	})

	t.Run("openssl -alpn h2", func(t *testing.T) {
		fp, out := sClientFingerprint(t, addr, "a.test", "-alpn", "h2")
		if want := sha256Fingerprint(beLeaf.der); fp != want {
			t.Fatalf("certificate %q, want the backend's (route without alpn) %q:\n%s", fp, want, tail(out, 3000))
		}
	})

	for _, tc := range []struct {
		name     string
		alpn     []string
		roots    *testCA
		greeting string
		proto    string
	}{
		{"Go client offering x-custom", []string{"x-custom"}, ca, "custom\n", "x-custom"},
		{"Go client offering h2 then x-custom", []string{"h2", "x-custom"}, ca, "custom\n", "x-custom"},
		{"Go client offering h2", []string{"h2", "http/1.1"}, beCA, "default\n", "h2"},
		{"Go client without alpn", nil, beCA, "default\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsDial(addr, &tls.Config{ServerName: "a.test", RootCAs: tc.roots.pool(), NextProtos: tc.alpn})
			if err != nil {
				t.Fatalf("handshake verifying against %s: %v", tc.roots.cert.Subject.CommonName, err)
			}
			defer c.Close()
			if got := c.ConnectionState().NegotiatedProtocol; got != tc.proto {
				t.Errorf("negotiated %q, want %q", got, tc.proto)
			}
			if got, err := readGreeting(c, len(tc.greeting)); err != nil || got != tc.greeting {
				t.Fatalf("greeting %q, %v; want %q", got, err, tc.greeting)
			}
			if got, err := roundTrip(c, "ping"); err != nil || got != "ping" {
				t.Errorf("echo: %q %v", got, err)
			}
		})
	}
}

// TestTLSUnknownSNI: a ClientHello no route claims gets an unrecognized_name
// alert.
func TestTLSUnknownSNI(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leaf := ca.issue(t, dir, "b", "b.test")
	echoBE := startTCPBackend(t, echo)
	p := startProxy(t, hcl(`
tls {
  certificate "b" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}
entrypoint "tls" {
  address = "127.0.0.1:0"
}
tcp_route "a" {
  entrypoints = ["tls"]
  sni         = ["a.test"]
  service     = "echo"
}
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test"]
  tls         = "terminate"
  service     = "echo"
}
service "echo" {
  backend %q {}
}
`, leaf.certFile, leaf.keyFile, echoBE.addr))
	addr := p.addr("tls")

	t.Run("openssl s_client", func(t *testing.T) {
		_, out := sClientFingerprint(t, addr, "nope.test")
		if !strings.Contains(strings.ToLower(out), "unrecognized name") {
			t.Fatalf("s_client output does not mention an unrecognized name alert:\n%s", tail(out, 3000))
		}
		if strings.Contains(out, "-----BEGIN CERTIFICATE-----") {
			t.Errorf("a certificate was served for nope.test:\n%s", tail(out, 3000))
		}
	})

	t.Run("Go client", func(t *testing.T) {
		start := time.Now()
		c, err := tlsDial(addr, &tls.Config{ServerName: "nope.test", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatal("handshake for nope.test succeeded")
		}
		if !strings.Contains(err.Error(), "unrecognized name") {
			t.Fatalf("error %q does not contain \"unrecognized name\"", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("alert took %v", el)
		}
	})

	t.Run("known names still work", func(t *testing.T) {
		c, err := tlsDial(addr, &tls.Config{ServerName: "b.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := roundTrip(c, "ok"); err != nil || got != "ok" {
			t.Fatalf("echo: %q %v", got, err)
		}
	})

	if n := echoBE.accepted.Load(); n != 1 {
		t.Errorf("echo backend accepted %d connections, want 1 (unknown names must not be dialed)", n)
	}
}
