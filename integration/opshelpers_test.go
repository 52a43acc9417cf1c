//go:build linux

package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// adminAddr returns the admin endpoint's bound address from the
// "admin listening" log line.
func (p *proc) adminAddr() string {
	p.t.Helper()
	re := regexp.MustCompile(`"msg":"admin listening","address":"([^"]+)"`)
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no \"admin listening\" log line:\n%s", p.log.String())
	return ""
}

// adminGet fetches path from the admin endpoint and returns status and body.
func adminGet(t testing.TB, addr, path string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: ioTimeout}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// mixedTraffic is one proxy with every kind of traffic the metrics and the
// access log describe, and the counts sent through it.
type mixedTraffic struct {
	p         *proc
	accessLog string
	h1, h2c   int // requests to route "api" on "web"
	notFound  int // requests no route takes on "web"
	h2tls     int // requests to route "api" over TLS (terminated) on "tls"
	h3        int // requests to route "api" over HTTP/3 on "tls"
	tcpConns  int // connections through tcp_route "echo"
	udpDgrams int // datagrams through udp_route "dns", one flow
	ptConns   int // connections through tcp_route "pt" (TLS passthrough)
}

// startMixed starts proxynow with HTTP (plain and terminated TLS), TCP, UDP
// and TLS passthrough routes, an admin endpoint and a JSON access log, and
// sends traffic of each kind.
func startMixed(t *testing.T, accessFormat string) *mixedTraffic {
	t.Helper()
	dir := t.TempDir()
	api := startHTTPBackend(t, "api")
	tcpBE := startTCPBackend(t, echo)
	udpBE := startUDPEcho(t, nil)
	ca := newTestCA(t, "ops-ca")
	ptLeaf := ca.issuePEM(t, "pt.test")
	ptBE := startTCPBackend(t, tlsGreetEcho(t, ptLeaf.tlsCert(t), "pt-hello"))
	webLeaf := ca.issue(t, dir, "web", "web.test")
	m := &mixedTraffic{accessLog: filepath.Join(dir, "access.log"),
		h1: 7, h2c: 3, notFound: 2, h2tls: 2, h3: 2, tcpConns: 3, udpDgrams: 5, ptConns: 2}
	m.p = startProxy(t, hcl(`
log {
  level  = "info"
  format = "json"
  access {
    format = %q
    path   = %q
  }
}
admin {
  address = "127.0.0.1:0"
}
tls {
  certificate "web" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "web" {
  address = "127.0.0.1:0"
}
entrypoint "tls" {
  address = "127.0.0.1:0"
  http3   = true
}
entrypoint "tcp" {
  address = "127.0.0.1:0"
}
entrypoint "udp" {
  address = "127.0.0.1:0"
  network = "udp"
}
http_route "api" {
  entrypoints = ["web", "tls"]
  path_prefix = "/api/"
  service     = "api"
}
tcp_route "pt" {
  entrypoints = ["tls"]
  sni         = ["pt.test"]
  tls         = "passthrough"
  service     = "pt"
}
tcp_route "echo" {
  entrypoints = ["tcp"]
  service     = "echo"
}
udp_route "dns" {
  entrypoints = ["udp"]
  service     = "dns"
  idle_timeout = "1s"
}
service "api" {
  backend "http://%s" {}
}
service "pt" {
  backend %q {}
}
service "echo" {
  backend %q {}
}
service "dns" {
  backend %q {}
}
`, accessFormat, m.accessLog, webLeaf.certFile, webLeaf.keyFile, api.addr, ptBE.addr, tcpBE.addr, udpBE.addr))

	web := "http://" + m.p.addr("web")
	h1 := newH1Client(t)
	for i := range m.h1 {
		if r := mustDo(t, h1, web, reqSpec{path: fmt.Sprintf("/api/h1/%d", i)}); r.status != 200 || r.proto != 1 {
			t.Fatalf("HTTP/1.1 request: %d over HTTP/%d", r.status, r.proto)
		}
	}
	for range m.notFound {
		if r := mustDo(t, h1, web, reqSpec{path: "/nothing"}); r.status != 404 {
			t.Fatalf("unrouted request: %d, want 404", r.status)
		}
	}
	h2c := newH2CClient(t)
	for range m.h2c {
		if r := mustDo(t, h2c, web, reqSpec{method: "POST", path: "/api/h2c", body: "x"}); r.status != 200 || r.proto != 2 {
			t.Fatalf("h2c request: %d over HTTP/%d", r.status, r.proto)
		}
	}
	h2tls := newH2TLSClient(t, ca, "web.test")
	for range m.h2tls {
		if r := mustDo(t, h2tls, "https://"+m.p.addr("tls"), reqSpec{path: "/api/tls"}); r.status != 200 || r.proto != 2 {
			t.Fatalf("HTTPS request: %d over HTTP/%d", r.status, r.proto)
		}
	}
	h3 := newH3Client(t, ca, "web.test")
	for range m.h3 {
		if r := mustDo(t, h3, "https://"+m.p.addr("tls"), reqSpec{path: "/api/h3"}); r.status != 200 || r.proto != 3 {
			t.Fatalf("HTTP/3 request: %d over HTTP/%d", r.status, r.proto)
		}
	}
	for i := range m.tcpConns {
		c := dialTCP(t, m.p.addr("tcp"))
		msg := fmt.Sprintf("tcp-%d", i)
		if got, err := roundTrip(c, msg); err != nil || got != msg {
			t.Fatalf("TCP echo: %q, %v", got, err)
		}
		c.Close()
	}
	for range m.ptConns {
		c, err := tlsDial(m.p.addr("tls"), &tls.Config{ServerName: "pt.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatalf("TLS passthrough: %v", err)
		}
		if g, err := readGreeting(c, len("pt-hello")); err != nil || g != "pt-hello" {
			t.Fatalf("TLS passthrough greeting %q, %v", g, err)
		}
		c.Close()
	}
	uc, err := net.Dial("udp", m.p.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	buf := make([]byte, 64)
	for i := range m.udpDgrams {
		msg := fmt.Sprintf("dgram-%d", i)
		_ = uc.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := uc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		n, err := uc.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("UDP echo: %q, %v", buf[:n], err)
		}
	}
	return m
}

// accessLines waits until the access log holds at least n lines matching
// keep and returns them, each parsed as JSON.
func accessLines(t *testing.T, path string, n int, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	var out []map[string]any
	for {
		out = out[:0]
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("access log line is not JSON: %q: %v", l, err)
			}
			if keep(m) {
				out = append(out, m)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}
