//go:build linux

package integration

// Helpers for the acme_*_test.go files: Let's Encrypt's pebble ACME server
// and its challenge test DNS server run as subprocesses, an httpreq
// adapter writing TXT records into that DNS server, and TLS checks against
// pebble's root.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pebbleEnv is a running pebble with its challtestsrv.
type pebbleEnv struct {
	t         testing.TB
	proc      *proc
	dir       string // ACME directory URL
	caFile    string // trusts pebble's own HTTPS listeners
	httpPort  int    // where pebble validates http-01 (proxynow's "web")
	tlsPort   int    // where pebble validates tls-alpn-01 (proxynow's "websecure")
	dnsAddr   string // challtestsrv's DNS server
	challMgmt string // challtestsrv's management API base URL
	mgmt      string // pebble's management API base URL
	client    *http.Client
}

type pebbleOpts struct {
	validity  time.Duration // certificate lifetime; 0: pebble's 90 days
	blocklist []string      // names pebble refuses to issue for
}

// startPebble starts challtestsrv (DNS only, every A query answered with
// 127.0.0.1 and no AAAA) and pebble resolving through it, with its default
// 5% nonce rejection left on and PEBBLE_VA_NOSLEEP set.
func startPebble(t testing.TB, o pebbleOpts) *pebbleEnv {
	t.Helper()
	pebbleBin := requireTool(t, "pebble")
	challBin := requireTool(t, "pebble-challtestsrv")
	e := &pebbleEnv{t: t, httpPort: freePort(t), tlsPort: freePort(t)}
	e.dnsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	challMgmt := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e.challMgmt = "http://" + challMgmt
	chall := startHelper(t, challBin, "-management", challMgmt, "-dnsserver", e.dnsAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv6", "", "-defaultIPv4", "127.0.0.1")
	waitDial(t, challMgmt, readyTimeout, chall.done)

	dir := t.TempDir()
	ca := newTestCA(t, "pebble-listener")
	leaf := ca.issue(t, dir, "pebble", "localhost")
	e.caFile = ca.file
	listen, mgmt := freePort(t), freePort(t)
	e.dir = fmt.Sprintf("https://localhost:%d/dir", listen)
	e.mgmt = fmt.Sprintf("https://localhost:%d", mgmt)
	validity := int64(7776000)
	if o.validity > 0 {
		validity = int64(o.validity / time.Second)
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    leaf.certFile,
		"privateKey":                     leaf.keyFile,
		"httpPort":                       e.httpPort,
		"tlsPort":                        e.tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                append([]string{"blocked-domain.example"}, o.blocklist...),
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": validity}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.proc = startHelperEnv(t, []string{"PEBBLE_VA_NOSLEEP=1"}, pebbleBin, "-config", cfgFile, "-dnsserver", e.dnsAddr)
	waitDial(t, fmt.Sprintf("127.0.0.1:%d", listen), readyTimeout, e.proc.done)
	waitDial(t, fmt.Sprintf("127.0.0.1:%d", mgmt), readyTimeout, e.proc.done)
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

// startHelperEnv is startHelper with extra environment variables.
func startHelperEnv(t testing.TB, env []string, name string, args ...string) *proc {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return startHelper(t, name, args...)
}

// orders counts the orders pebble accepted (it logs each one).
func (e *pebbleEnv) orders() int { return strings.Count(e.proc.log.String(), "Added order") }

// roots is the pool of pebble's issuing root.
func (e *pebbleEnv) roots() *x509.CertPool {
	e.t.Helper()
	resp, err := e.client.Get(e.mgmt + "/roots/0")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("pebble /roots/0: %d %v", resp.StatusCode, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		e.t.Fatalf("pebble /roots/0 holds no PEM: %q", b)
	}
	return p
}

// acmeBlock is an acme block for pebble.
func (e *pebbleEnv) acmeBlock(name, challenge, storage string, domains []string, extra string) string {
	q := make([]string, len(domains))
	for i, d := range domains {
		q[i] = fmt.Sprintf("%q", d)
	}
	return fmt.Sprintf(`  acme %q {
    email     = "ops@example.com"
    directory = %q
    ca_file   = %q
    challenge = %q
    storage   = %q
    domains   = [%s]
%s  }
`, name, e.dir, e.caFile, challenge, storage, strings.Join(q, ", "), extra)
}

// acmeConfig is a proxynow configuration with plain HTTP on pebble's
// httpPort, TLS on its tlsPort, a hello service, and tlsBody inside tls.
func (e *pebbleEnv) acmeConfig(tlsBody string) string {
	return fmt.Sprintf(`entrypoint "web" {
  address     = "127.0.0.1:%d"
  middlewares = ["to_https"]
}
entrypoint "websecure" {
  address = "127.0.0.1:%d"
  timeouts {
    handshake = "40s" # on-demand issuance happens within the handshake
  }
}
tls {
%s}
middleware "to_https" {
  redirect_scheme {
    scheme = "https"
  }
}
http_route "site" {
  entrypoints = ["web", "websecure"]
  service     = "hello"
}
service "hello" {
  respond {
    status = 200
    body   = "hello"
  }
}
`, e.httpPort, e.tlsPort, tlsBody)
}

// verifiedLeaf completes a handshake for name verified against roots and
// returns the leaf, or the error.
func verifiedLeaf(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := tlsDial(addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitServed polls until every name gets a certificate that verifies
// against roots, and returns their leaves by name.
func waitServed(t testing.TB, p *proc, addr string, names []string, roots *x509.CertPool, d time.Duration) map[string]*x509.Certificate {
	t.Helper()
	got := map[string]*x509.Certificate{}
	deadline := time.Now().Add(d)
	var lastErr error
	for len(got) < len(names) && time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("proxynow exited: %v", p.exitErr)
		}
		for _, n := range names {
			if got[n] != nil {
				continue
			}
			if leaf, err := verifiedLeaf(addr, n, roots); err == nil {
				got[n] = leaf
			} else {
				lastErr = err
			}
		}
		if len(got) < len(names) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(got) < len(names) {
		t.Fatalf("%d of %d names served a valid certificate after %v; last error: %v", len(got), len(names), d, lastErr)
	}
	return got
}

// httpreqAdapter is the endpoint of lego's httpreq DNS provider: it turns
// POST /present and /cleanup into TXT records in challtestsrv.
func (e *pebbleEnv) httpreqAdapter(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FQDN  string `json:"fqdn"`
			Value string `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var path string
		var body any
		switch r.URL.Path {
		case "/present":
			path, body = "/set-txt", map[string]string{"host": req.FQDN, "value": req.Value}
		case "/cleanup":
			path, body = "/clear-txt", map[string]string{"host": req.FQDN}
		default:
			http.NotFound(w, r)
			return
		}
		b, _ := json.Marshal(body)
		resp, err := http.Post(e.challMgmt+path, "application/json", bytes.NewReader(b))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// logCount counts the JSON log records of p whose msg is msg.
func logCount(p *proc, msg string) int {
	return strings.Count(p.log.String(), fmt.Sprintf(`"msg":%q`, msg))
}

// waitLogCount polls until p logged msg at least n times.
func waitLogCount(t testing.TB, p *proc, msg string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for logCount(p, msg) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times after %v, want %d", msg, logCount(p, msg), d, n)
		}
		if p.exited() {
			t.Fatalf("proxynow exited: %v", p.exitErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
