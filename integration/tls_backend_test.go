//go:build linux

package integration

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTLSBackend: a plain tcp route re-encrypts toward nginx with a
// tls:// backend, verifying nginx's certificate.
func TestTLSBackend(t *testing.T) {
	ng := startNginx(t, false)
	const request = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
	proxyFor := func(t *testing.T, caFile string) *proc {
		t.Helper()
		p := startProxy(t, hcl(`
entrypoint "plain" {
  address = "127.0.0.1:0"
}
tcp_route "p" {
  entrypoints = ["plain"]
  tls         = "none"
  service     = "reenc"
}
service "reenc" {
  backend "tls://%s" {}
  tls {
    server_name          = "a.test"
    ca_file              = %q
    insecure_skip_verify = false
  }
}
`, ng.addr, caFile))
		return p
	}

	t.Run("verified re-encryption", func(t *testing.T) {
		addr := proxyFor(t, ng.ca.file).addr("plain")
		for i := range 3 {
			c := dialTCP(t, addr)
			_ = c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(c, request); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("request %d: reading the response: %v (got %q)", i, err, got)
			}
			s := string(got)
			if !strings.HasPrefix(s, "HTTP/1.1 200 ") || !strings.HasSuffix(s, "\r\n\r\nnginx-a\n") {
				t.Fatalf("request %d: response %q, want nginx's 200 \"nginx-a\\n\"", i, s)
			}
		}
	})

	t.Run("wrong ca_file closes the connection", func(t *testing.T) {
		other := newTestCA(t, "other")
		p := proxyFor(t, other.file)
		addr := p.addr("plain")
		for i := range 3 {
			el, got := dialExpectClosed(t, addr, []byte(request), 10*time.Second)
			if len(got) != 0 {
				t.Fatalf("connection %d: got %q, want the connection closed without data", i, trunc(got))
			}
			t.Logf("connection %d closed after %v", i, el)
		}
		// The close must come from verifying nginx's certificate against
		// the wrong CA (the dial fails; the backend is marked down).
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(p.log.String(), "certificate signed by unknown authority") {
			if time.Now().After(deadline) {
				t.Fatalf("proxynow did not log the backend verification failure:\n%s", tail(p.log.String(), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestTLSValidate: a missing certificate file is a config error with a
// position.
func TestTLSValidate(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leaf := ca.issue(t, dir, "b", "b.test")
	missing := filepath.Join(dir, "missing.crt")
	text := fmt.Sprintf(`entrypoint "tls" {
  address = "127.0.0.1:0"
}
tls {
  certificate "b" {
    cert_file = %q
    key_file  = %q
  }
}
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test"]
  tls         = "terminate"
  service     = "s"
}
service "s" {
  backend %q {}
}
`, missing, leaf.keyFile, closedAddr(t))
	f := writeFile(t, "tls.hcl", text)
	code, stdout, stderr := runCLI(t, "validate", f)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// cert_file is on line 6; its value starts at column 17.
	re := regexp.MustCompile(regexp.QuoteMeta(f) + `:6:\d+: .*cert_file`)
	if !re.MatchString(stderr) {
		t.Fatalf("stderr lacks %s:6:COL: ... cert_file ...:\n%s", f, stderr)
	}
	if !strings.Contains(stderr, "missing.crt") {
		t.Errorf("stderr does not name the missing file:\n%s", stderr)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(f) + `:6:17: `).MatchString(stderr) {
		t.Errorf("stderr does not point at column 17 of line 6 (the value):\n%s", stderr)
	}

	// The same file with the certificate present is valid.
	good := writeFile(t, "tls.hcl", strings.Replace(text, missing, leaf.certFile, 1))
	if code, _, stderr := runCLI(t, "validate", good); code != 0 {
		t.Errorf("with the file present: exit code %d, want 0; stderr:\n%s", code, stderr)
	}
}
