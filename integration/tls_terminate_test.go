//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTLSTerminate: proxynow completes TLS with the certificate chosen by
// SNI and pipes plaintext to the backend.
func TestTLSTerminate(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leafB := ca.issue(t, dir, "b", "b.test", "*.wild.test")
	leafDef := ca.issue(t, dir, "default", "default.test")

	// The backend records the first line it reads (it must be the
	// client's plaintext), then echoes everything.
	firstLines := make(chan string, 16)
	be := startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return // a handshake-only client (no data) sends nothing here
		}
		firstLines <- line
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
		_, _ = io.Copy(c, r)
		_ = c.CloseWrite()
	})
	p := startProxy(t, hcl(`
tls {
  min_version = "1.2"
  certificate "b" {
    cert_file = %q
    key_file  = %q
  }
  certificate "default" {
    cert_file = %q
    key_file  = %q
    default   = true
  }
}
entrypoint "tls" {
  address = "127.0.0.1:0"
  timeouts {
    handshake = "10s"
  }
}
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test", "*.wild.test", "other.test"]
  tls         = "terminate"
  service     = "echo"
}
service "echo" {
  backend %q {}
}
`, leafB.certFile, leafB.keyFile, leafDef.certFile, leafDef.keyFile, be.addr))
	addr := p.addr("tls")

	for _, name := range []string{"b.test", "x.wild.test", "X.Wild.TEST"} {
		t.Run("verifies "+name, func(t *testing.T) {
			c, err := tlsDial(addr, &tls.Config{ServerName: name, RootCAs: ca.pool()})
			if err != nil {
				t.Fatalf("handshake verifying proxynow's certificate for %s: %v", name, err)
			}
			defer c.Close()
			if got := c.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, leafB.der) {
				t.Fatalf("served %s, want the b certificate %s", sha256Fingerprint(got), sha256Fingerprint(leafB.der))
			}
			msg := "plaintext hello from " + name + "\n"
			if got, err := roundTrip(c, msg); err != nil || got != msg {
				t.Fatalf("echo: %q %v", got, err)
			}
			select {
			case l := <-firstLines:
				if l != msg {
					t.Fatalf("backend read %q first, want the plaintext %q", l, msg)
				}
			case <-time.After(ioTimeout):
				t.Fatal("backend read nothing")
			}
		})
	}

	t.Run("default certificate does not verify for a name not in it", func(t *testing.T) {
		_, err := tlsDial(addr, &tls.Config{ServerName: "other.test", RootCAs: ca.pool()})
		if err == nil {
			t.Fatal("verification of other.test succeeded; the default certificate does not name it")
		}
		if !strings.Contains(err.Error(), "certificate is valid for default.test") {
			t.Errorf("error %q, want a name mismatch against default.test", err)
		}
		got, err := servedLeaf(addr, "other.test")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, leafDef.der) {
			t.Fatalf("served %s for other.test, want the default certificate %s", sha256Fingerprint(got), sha256Fingerprint(leafDef.der))
		}
	})

	t.Run("4 MiB round trip over TLS offload", func(t *testing.T) {
		const size = 4 << 20
		c, err := tlsDial(addr, &tls.Config{ServerName: "b.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		// The first line lets the backend see plaintext; the rest is random.
		const first = "offload\n"
		var sent []byte
		var sendErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			h := sha256.New()
			if _, sendErr = io.WriteString(c, first); sendErr != nil {
				return
			}
			h.Write([]byte(first))
			_, sendErr = io.CopyN(io.MultiWriter(c, h), randReader(), size-int64(len(first)))
			sent = h.Sum(nil)
		})
		h := sha256.New()
		n, err := io.CopyN(h, c, size)
		wg.Wait()
		if sendErr != nil {
			t.Fatalf("send: %v", sendErr)
		}
		if err != nil {
			t.Fatalf("receive after %d of %d bytes: %v", n, size, err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, sent) {
			t.Fatalf("echoed sha256 %x, sent %x", got, sent)
		}
		select {
		case l := <-firstLines:
			if l != first {
				t.Fatalf("backend read %q first, want plaintext %q", l, first)
			}
		case <-time.After(ioTimeout):
			t.Fatal("backend read nothing")
		}
	})

	t.Run("TLS 1.1 refused with min_version 1.2", func(t *testing.T) {
		_, err := tlsDial(addr, &tls.Config{ServerName: "b.test", RootCAs: ca.pool(),
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("error %q, want a protocol_version alert from proxynow", err)
		}
	})
}

// TestTLSCertReload: replacing the certificate files on disk changes the
// certificate served to new handshakes, without a restart.
func TestTLSCertReload(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leaf1 := ca.issue(t, dir, "b", "b.test")
	be := startTCPBackend(t, echo)
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
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test"]
  tls         = "terminate"
  service     = "echo"
}
service "echo" {
  backend %q {}
}
`, leaf1.certFile, leaf1.keyFile, be.addr))
	addr := p.addr("tls")
	cfg := &tls.Config{ServerName: "b.test", RootCAs: ca.pool()}

	// waitServed polls new handshakes until want is served, for up to d.
	waitServed := func(t *testing.T, want *leafCert, d time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		var last []byte
		var lastErr error
		for time.Since(start) < d {
			c, err := tlsDial(addr, cfg)
			if err == nil {
				last = c.ConnectionState().PeerCertificates[0].Raw
				c.Close()
				if bytes.Equal(last, want.der) {
					return time.Since(start)
				}
			}
			lastErr = err
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("new certificate %s not served within %v (last served %s, last error %v)",
			sha256Fingerprint(want.der), d, sha256Fingerprint(last), lastErr)
		return 0
	}

	old := dialTLSEcho(t, addr, cfg)
	if got := old.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, leaf1.der) {
		t.Fatalf("initial certificate %s, want %s", sha256Fingerprint(got), sha256Fingerprint(leaf1.der))
	}

	leaf2 := ca.issuePEM(t, "b.test")
	t.Run("renamed files are served", func(t *testing.T) {
		writeFileAtomic(t, leaf1.keyFile, leaf2.keyPEM)
		writeFileAtomic(t, leaf1.certFile, leaf2.certPEM)
		el := waitServed(t, leaf2, 5*time.Second)
		t.Logf("new certificate served after %v", el)
		if got, err := roundTrip(old, "still here"); err != nil || got != "still here" {
			t.Fatalf("connection opened before the swap: %q %v", got, err)
		}
	})

	t.Run("a broken file keeps the old certificate", func(t *testing.T) {
		writeFileAtomic(t, leaf1.certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"))
		// Two poll periods and then some.
		deadline := time.Now().Add(4500 * time.Millisecond)
		for time.Now().Before(deadline) {
			c, err := tlsDial(addr, cfg)
			if err != nil {
				t.Fatalf("handshake failed with a broken certificate file on disk: %v", err)
			}
			got := c.ConnectionState().PeerCertificates[0].Raw
			c.Close()
			if !bytes.Equal(got, leaf2.der) {
				t.Fatalf("served %s, want the last good certificate %s", sha256Fingerprint(got), sha256Fingerprint(leaf2.der))
			}
			time.Sleep(250 * time.Millisecond)
		}
		if p.exited() {
			t.Fatal("proxynow exited")
		}
	})

	t.Run("a good file after a broken one is served", func(t *testing.T) {
		leaf3 := ca.issuePEM(t, "b.test")
		writeFileAtomic(t, leaf1.keyFile, leaf3.keyPEM)
		writeFileAtomic(t, leaf1.certFile, leaf3.certPEM)
		waitServed(t, leaf3, 5*time.Second)
		if got, err := roundTrip(old, "and still"); err != nil || got != "and still" {
			t.Fatalf("connection opened before the swaps: %q %v", got, err)
		}
	})
}

// dialTLSEcho opens a verified TLS connection to an echo route and checks
// one round trip; it is closed in t.Cleanup.
func dialTLSEcho(t testing.TB, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tlsDial(addr, cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", cfg.ServerName, err)
	}
	t.Cleanup(func() { c.Close() })
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello" {
		t.Fatalf("echo: %q %v", got, err)
	}
	return c
}
