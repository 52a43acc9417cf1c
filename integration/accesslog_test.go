//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAccessLogJSON(t *testing.T) {
	m := startMixed(t, "json")
	nHTTP := m.h1 + m.h2c + m.notFound + m.h2tls + m.h3
	httpLines := accessLines(t, m.accessLog, nHTTP, func(l map[string]any) bool { return l["type"] == "http" })
	if len(httpLines) != nHTTP {
		t.Fatalf("%d HTTP lines, want %d (one per request)", len(httpLines), nHTTP)
	}
	ids := map[string]bool{}
	var h1, h2c, tlsN, h3, notFound int
	for _, l := range httpLines {
		for _, f := range []string{"time", "client", "method", "host", "path", "protocol", "status", "bytes", "duration", "entrypoint", "route", "service", "backend", "request_id"} {
			if _, ok := l[f]; !ok {
				t.Errorf("HTTP line without %q: %v", f, l)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"])); err != nil {
			t.Errorf("time %v: %v", l["time"], err)
		}
		if l["client"] != "127.0.0.1" {
			t.Errorf("client %v, want 127.0.0.1", l["client"])
		}
		id := fmt.Sprint(l["request_id"])
		if id == "" || ids[id] {
			t.Errorf("request_id %q empty or repeated", id)
		}
		ids[id] = true
		if d, _ := l["duration"].(float64); d <= 0 || d > 30 {
			t.Errorf("duration %v", l["duration"])
		}
		path := fmt.Sprint(l["path"])
		switch {
		case path == "/nothing":
			notFound++
			if l["status"] != 404.0 || l["route"] != "" || l["backend"] != "" {
				t.Errorf("unrouted request line: %v", l)
			}
		case l["entrypoint"] == "tls":
			if l["protocol"] == "HTTP/3.0" {
				h3++
			} else {
				tlsN++
			}
			if l["tls_version"] != "1.3" || l["sni"] != "web.test" || l["protocol"] != "HTTP/2.0" && l["protocol"] != "HTTP/3.0" {
				t.Errorf("TLS request line: %v", l)
			}
		case l["protocol"] == "HTTP/1.1":
			h1++
			if l["method"] != "GET" || !strings.HasPrefix(path, "/api/h1/") {
				t.Errorf("HTTP/1.1 line: %v", l)
			}
		case l["protocol"] == "HTTP/2.0":
			h2c++
			if l["method"] != "POST" {
				t.Errorf("h2c line: %v", l)
			}
		}
		if path != "/nothing" {
			if l["status"] != 200.0 || l["route"] != "api" || l["service"] != "api" || !strings.HasPrefix(fmt.Sprint(l["backend"]), "127.0.0.1:") {
				t.Errorf("proxied request line: %v", l)
			}
			if b, _ := l["bytes"].(float64); b <= 0 {
				t.Errorf("proxied request with bytes %v", l["bytes"])
			}
		}
	}
	if h1 != m.h1 || h2c != m.h2c || tlsN != m.h2tls || h3 != m.h3 || notFound != m.notFound {
		t.Errorf("lines by kind: h1 %d h2c %d h2 %d h3 %d 404 %d; want %d %d %d %d %d", h1, h2c, tlsN, h3, notFound, m.h1, m.h2c, m.h2tls, m.h3, m.notFound)
	}

	conns := accessLines(t, m.accessLog, m.tcpConns+m.ptConns+1, func(l map[string]any) bool { return l["type"] != "http" })
	var echo, pt, udp int
	for _, l := range conns {
		for _, f := range []string{"time", "client", "entrypoint", "route", "service", "backend", "bytes_in", "bytes_out", "duration", "reason"} {
			if _, ok := l[f]; !ok {
				t.Errorf("connection line without %q: %v", f, l)
			}
		}
		switch l["route"] {
		case "echo":
			echo++
			if l["type"] != "tcp" || l["bytes_in"] != 5.0 || l["bytes_out"] != 5.0 || l["reason"] != "eof" {
				t.Errorf("echo line: %v", l)
			}
		case "pt":
			pt++
			if l["type"] != "tcp" || l["entrypoint"] != "tls" {
				t.Errorf("passthrough line: %v", l)
			}
			if in, _ := l["bytes_in"].(float64); in < 100 { // at least the ClientHello
				t.Errorf("passthrough bytes_in %v", l["bytes_in"])
			}
		case "dns":
			udp++
			if l["type"] != "udp" || l["reason"] != "idle" || l["bytes_in"] != float64(m.udpDgrams*len("dgram-0")) ||
				l["bytes_out"] != float64(m.udpDgrams*len("dgram-0")) {
				t.Errorf("UDP flow line: %v", l)
			}
		default:
			t.Errorf("unexpected line: %v", l)
		}
	}
	if echo != m.tcpConns || pt != m.ptConns || udp != 1 {
		t.Errorf("connection lines: echo %d, passthrough %d, udp %d; want %d, %d, 1", echo, pt, udp, m.tcpConns, m.ptConns)
	}
}

func TestAccessLogCombined(t *testing.T) {
	m := startMixed(t, "combined")
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /api/h1/\d HTTP/1\.1" 200 \d+ "-" "Go-http-client/1\.1"$`)
	deadline := time.Now().Add(ioTimeout)
	for {
		b, _ := os.ReadFile(m.accessLog)
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "/api/h1/") {
				if !re.MatchString(l) {
					t.Fatalf("combined line %q does not match %s", l, re)
				}
				n++
			}
		}
		if n == m.h1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d HTTP/1.1 lines, want %d:\n%s", n, m.h1, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAccessLogSlowSink points the access log at a FIFO whose reader never
// reads: once the pipe and the queue are full, every request still
// succeeds, lines are dropped and counted, and shutdown is not held up.
func TestAccessLogSlowSink(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "access.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads keeps the writer's open from blocking.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	api := startHTTPBackend(t, "api")
	p := startProxy(t, hcl(`
log {
  level  = "info"
  format = "json"
  access {
    path   = %q
    buffer = 16
  }
}
global {
  grace_period = "2s"
}
admin {
  address = "127.0.0.1:0"
}
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "api" {
  entrypoints = ["web"]
  service     = "api"
}
service "api" {
  backend "http://%s" {}
}
`, fifo, api.addr))
	c := newH1Client(t)
	web := "http://" + p.addr("web")
	// ~300-byte lines: 2000 of them overflow the 64 KiB pipe, the
	// writer's 64 KiB buffer and the 16-line queue several times over.
	const n = 2000
	start := time.Now()
	for i := range n {
		if res := mustDo(t, c, web, reqSpec{path: fmt.Sprintf("/x/%d", i)}); res.status != 200 {
			t.Fatalf("request %d: %d", i, res.status)
		}
	}
	t.Logf("%d requests in %v with a stuck access log", n, time.Since(start))
	fams := scrape(t, p.adminAddr())
	dropped := value(series(t, fams, "proxynow_accesslog_lines_total", map[string]string{"result": "dropped"}))
	written := value(series(t, fams, "proxynow_accesslog_lines_total", map[string]string{"result": "written"}))
	if dropped < n/2 {
		t.Errorf("dropped %v lines of %d with a stuck sink, want most of them", dropped, n)
	}
	if written+dropped > n || written+dropped < n-16-1 {
		t.Errorf("written %v + dropped %v does not account for %d lines (queue 16)", written, dropped, n)
	}
	p.signal(syscall.SIGTERM)
	if code, ok := p.wait(exitTimeout); !ok || code != 0 {
		t.Fatalf("exit %d (exited %v) with a stuck access log", code, ok)
	}
}
