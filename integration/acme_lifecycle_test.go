//go:build linux

package integration

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestACMERenewal has pebble issue 40-second certificates: proxynow
// renews before expiry, new handshakes get the new certificate, and a
// connection opened before the renewal keeps working. renew_before makes
// the renewal start at the latest 15s into the lifetime: pebble's ARI
// window for such a certificate is its whole lifetime, and a renewal
// drawn in its last seconds would let it expire while lego polls.
func TestACMERenewal(t *testing.T) {
	e := startPebble(t, pebbleOpts{validity: 40 * time.Second})
	name := "renew.test"
	p := startProxy(t, e.acmeConfig(e.acmeBlock("pebble", "tls-alpn-01", filepath.Join(t.TempDir(), "acme"), []string{name},
		"    renew_before = \"25s\"\n")))
	addr := p.addr("websecure")
	roots := e.roots()
	first := waitServed(t, p, addr, []string{name}, roots, 2*time.Minute)[name]

	// A keep-alive connection opened on the first certificate.
	conn, err := tlsDial(addr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(ioTimeout))
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", name)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request on the connection opened before the renewal: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()

	deadline := time.Now().Add(90 * time.Second)
	var renewed bool
	for !renewed && time.Now().Before(deadline) {
		leaf, err := verifiedLeaf(addr, name, roots)
		if err != nil {
			t.Fatalf("handshake during renewal: %v", err)
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = true
			// Certificate times have whole seconds: a renewal that ARI
			// drew within a second of the first issuance expires in the
			// same second.
			if leaf.NotAfter.Before(first.NotAfter) {
				t.Errorf("renewed certificate expires %v, before the old one's %v", leaf.NotAfter, first.NotAfter)
			}
			if time.Now().After(first.NotAfter) {
				t.Errorf("renewed only after the old certificate expired at %v", first.NotAfter)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !renewed {
		t.Fatalf("certificate (expiring %v) not renewed after 90s", first.NotAfter)
	}
	get()
	if got := conn.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("the open connection's certificate changed")
	}
	if !strings.Contains(p.log.String(), `"renewal":true`) {
		t.Error("no certificate obtained log line with renewal=true")
	}
}

// TestACMERestart stops proxynow after issuance and starts it again on the
// same storage: the stored certificates are served from the first
// handshake, no order is placed and the account is reused.
func TestACMERestart(t *testing.T) {
	e := startPebble(t, pebbleOpts{})
	names := []string{"r1.test", "r2.test", "r3.test"}
	storage := filepath.Join(t.TempDir(), "acme")
	cfg := e.acmeConfig(e.acmeBlock("pebble", "http-01", storage, names, ""))
	p := startProxy(t, cfg)
	roots := e.roots()
	before := waitServed(t, p, p.addr("websecure"), names, roots, 2*time.Minute)
	waitLogCount(t, p, "ACME initial check done", 1, time.Minute)
	orders := e.orders()
	p.signal(syscall.SIGTERM)
	if _, exited := p.wait(exitTimeout); !exited {
		t.Fatal("proxynow did not exit on SIGTERM")
	}

	start := time.Now()
	p2 := startProxy(t, cfg)
	addr := p2.addr("websecure")
	for _, n := range names {
		leaf, err := verifiedLeaf(addr, n, roots)
		if err != nil {
			t.Fatalf("%s right after the restart: %v", n, err)
		}
		if leaf.SerialNumber.Cmp(before[n].SerialNumber) != 0 {
			t.Errorf("%s: a different certificate than the stored one", n)
		}
	}
	t.Logf("restart: %d stored certificates served %v after start", len(names), time.Since(start).Round(time.Millisecond))
	waitLogCount(t, p2, "ACME initial check done", 1, time.Minute)
	if got := e.orders(); got != orders {
		t.Errorf("pebble got %d orders after the restart, want %d as before", got, orders)
	}
	if n := logCount(p2, "ACME account registered"); n != 0 {
		t.Errorf("the account was registered again (%d times) instead of reused", n)
	}
	if n := strings.Count(e.proc.log.String(), "There are now 2 accounts"); n != 0 {
		t.Error("pebble has a second account")
	}
}

// TestACMEFailure has pebble refuse one name: the failure is logged with
// pebble's reason and a back-off, the configured default certificate is
// served for that name, and the other name gets its certificate.
func TestACMEFailure(t *testing.T) {
	e := startPebble(t, pebbleOpts{blocklist: []string{"blocked.test"}})
	ca := newTestCA(t, "fallback")
	fb := ca.issue(t, t.TempDir(), "fallback", "fallback.test")
	names := []string{"ok.test", "blocked.test"}
	block := fmt.Sprintf("  certificate \"fallback\" {\n    cert_file = %q\n    key_file  = %q\n    default   = true\n  }\n", fb.certFile, fb.keyFile) +
		e.acmeBlock("pebble", "tls-alpn-01", filepath.Join(t.TempDir(), "acme"), names, "")
	p := startProxy(t, e.acmeConfig(block))
	addr := p.addr("websecure")
	waitServed(t, p, addr, names[:1], e.roots(), 2*time.Minute)
	waitLogCount(t, p, "ACME issuance failed; keeping what is served", 1, time.Minute)

	var rec struct {
		Domain  string `json:"domain"`
		Error   string `json:"error"`
		RetryIn int64  `json:"retry_in"`
	}
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, "ACME issuance failed") {
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			break
		}
	}
	if rec.Domain != "blocked.test" || !strings.Contains(rec.Error, "rejectedIdentifier") {
		t.Errorf("failure log: domain %q error %q; want blocked.test with pebble's rejectedIdentifier", rec.Domain, rec.Error)
	}
	if d := time.Duration(rec.RetryIn); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("retry_in %v, want about a minute (the first back-off step)", d)
	}
	leaf, err := servedLeaf(addr, "blocked.test")
	if err != nil {
		t.Fatalf("blocked.test handshake: %v", err)
	}
	if string(leaf) != string(fb.der) {
		t.Error("blocked.test did not get the default certificate")
	}
	// The process is healthy: the other name is served over HTTPS.
	c, err := tlsDial(addr, &tls.Config{ServerName: "ok.test", RootCAs: e.roots()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, _, err := httpGetOver(c, "ok.test"); err != nil || status != 200 {
		t.Errorf("GET over ok.test: %d %v", status, err)
	}
	if n := logCount(p, "ACME issuance failed; keeping what is served"); n != 1 {
		t.Errorf("%d failures logged, want 1: the retry waits a minute", n)
	}
}
