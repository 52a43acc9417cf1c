//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// resetBackend is a TCP backend that reads a request's head, records it and
// resets the connection (SO_LINGER 0) without answering.
type resetBackend struct {
	*tcpBackend
	mu    sync.Mutex
	heads []textproto.MIMEHeader
	lines []string
}

func startResetBackend(t testing.TB) *resetBackend {
	t.Helper()
	rb := &resetBackend{}
	rb.tcpBackend = startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		tr := textproto.NewReader(bufio.NewReader(c))
		line, err := tr.ReadLine()
		if err != nil {
			return
		}
		h, err := tr.ReadMIMEHeader()
		if err != nil {
			return
		}
		rb.mu.Lock()
		rb.lines = append(rb.lines, line)
		rb.heads = append(rb.heads, h)
		rb.mu.Unlock()
		_ = c.SetLinger(0) // the deferred Close sends RST
	})
	return rb
}

// saw reports whether the backend received a request with X-Seq seq.
func (rb *resetBackend) saw(seq string) bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for _, h := range rb.heads {
		if h.Get("X-Seq") == seq {
			return true
		}
	}
	return false
}

func (b *httpBackend) saw(seq string) int {
	n := 0
	for _, s := range b.requests() {
		if s.Header.Get("X-Seq") == seq {
			n++
		}
	}
	return n
}

// TestHTTPRetries: a GET whose backend resets the connection is retried on
// another backend and succeeds; a POST that reached the resetting backend is
// not retried (502, and the good backend never sees it); a POST whose
// connection could not even be made is retried.
func TestHTTPRetries(t *testing.T) {
	reset := startResetBackend(t)
	good := startHTTPBackend(t, "good")
	down := closedAddr(t)
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "reset" {
  entrypoints = ["web"]
  hosts       = ["reset.test"]
  service     = "reset"
}
http_route "down" {
  entrypoints = ["web"]
  hosts       = ["down.test"]
  service     = "down"
}
service "reset" {
  backend "http://%s" {}
  backend "http://%s" {}
  retry {
    attempts = 2
  }
}
service "down" {
  backend "http://%s" {}
  backend "http://%s" {}
  retry {
    attempts = 2
  }
}
`, reset.addr, good.addr, down, good.addr))
	base := "http://" + p.addr("web")
	c := newH1Client(t)

	t.Run("GET retried after a reset", func(t *testing.T) {
		resets := 0
		for i := range 4 {
			seq := fmt.Sprintf("get-%d", i)
			r := mustDo(t, c, base, reqSpec{host: "reset.test", path: "/g", header: map[string]string{"X-Seq": seq}})
			if r.status != 200 || r.body != "good" {
				t.Errorf("GET %s: %d %q, want 200 from good", seq, r.status, r.body)
			}
			if n := good.saw(seq); n != 1 {
				t.Errorf("GET %s reached the good backend %d times, want 1", seq, n)
			}
			if reset.saw(seq) {
				resets++
			}
		}
		if resets == 0 {
			t.Fatal("no GET reached the resetting backend: the retry was not exercised")
		}
	})

	t.Run("POST that reached the backend not retried", func(t *testing.T) {
		reached := 0
		for i := range 4 {
			seq := fmt.Sprintf("post-%d", i)
			r := mustDo(t, c, base, reqSpec{host: "reset.test", method: "POST", path: "/p", body: "payload " + seq,
				header: map[string]string{"X-Seq": seq}})
			if !reset.saw(seq) {
				if r.status != 200 || good.saw(seq) != 1 {
					t.Errorf("POST %s went to the good backend: %d %q", seq, r.status, r.body)
				}
				continue
			}
			reached++
			if r.status != http.StatusBadGateway {
				t.Errorf("POST %s reached the resetting backend: got %d %q, want 502", seq, r.status, r.body)
			}
			if n := good.saw(seq); n != 0 {
				t.Errorf("POST %s was retried: the good backend saw it %d times", seq, n)
			}
		}
		if reached == 0 {
			t.Fatal("no POST reached the resetting backend")
		}
	})

	t.Run("POST retried when the connection was never made", func(t *testing.T) {
		r := mustDo(t, c, base, reqSpec{host: "down.test", method: "POST", path: "/p", body: "payload",
			header: map[string]string{"X-Seq": "post-down"}})
		if r.status != 200 || good.saw("post-down") != 1 {
			t.Errorf("POST with the first backend refusing connections: %d %q, good saw it %d times; want 200 from good once",
				r.status, r.body, good.saw("post-down"))
		}
	})
}

// TestHTTPErrors: 404 without a route, 502 for an unreachable backend, 504
// for one that does not answer within response_header_timeout; short
// plain-text bodies; an X-Request-Id on every response, each different.
func TestHTTPErrors(t *testing.T) {
	good := startHTTPBackend(t, "good")
	slow := startHTTPBackend(t, "slow")
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	p := startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "good" {
  entrypoints = ["web"]
  hosts       = ["good.test"]
  service     = "good"
}
http_route "down" {
  entrypoints = ["web"]
  hosts       = ["down.test"]
  service     = "down"
}
http_route "slow" {
  entrypoints = ["web"]
  hosts       = ["slow.test"]
  service     = "slow"
}
http_route "maint" {
  entrypoints = ["web"]
  hosts       = ["maint.test"]
  service     = "maint"
}
service "good" {
  backend "http://%s" {}
}
service "down" {
  backend "http://%s" {}
}
service "slow" {
  response_header_timeout = "300ms"
  backend "http://%s" {}
}
service "maint" {
  respond {
    status  = 503
    body    = "down for maintenance\n"
    headers = { "Retry-After" = "120" }
  }
}
`, good.addr, closedAddr(t), slow.addr))
	base := "http://" + p.addr("web")

	cases := []struct {
		name    string
		host    string
		status  int
		body    string
		maxTime time.Duration
	}{
		{"200", "good.test", 200, "good", 0},
		{"404 no route", "nowhere.test", 404, "404 Not Found\n", 0},
		{"502 unreachable", "down.test", 502, "502 Bad Gateway\n", 0},
		{"504 timeout", "slow.test", 504, "504 Gateway Timeout\n", 3 * time.Second},
		{"respond", "maint.test", 503, "down for maintenance\n", 0},
	}
	ids := map[string]string{}
	for _, kind := range []clientKind{clientH1, clientH2C} {
		t.Run(kind.String(), func(t *testing.T) {
			c := newH1Client(t)
			if kind == clientH2C {
				c = newH2CClient(t)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					for i := range 5 {
						start := time.Now()
						r := mustDo(t, c, base, reqSpec{host: tc.host})
						el := time.Since(start)
						if r.status != tc.status || r.body != tc.body {
							t.Fatalf("got %d %q, want %d %q", r.status, r.body, tc.status, tc.body)
						}
						if tc.maxTime > 0 && el > tc.maxTime {
							t.Errorf("answered after %v, want within %v", el, tc.maxTime)
						}
						if tc.status >= 400 && tc.name != "respond" {
							if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
								t.Errorf("Content-Type %q, want text/plain", ct)
							}
						}
						if tc.name == "respond" && r.header.Get("Retry-After") != "120" {
							t.Errorf("respond: Retry-After %q, want 120", r.header.Get("Retry-After"))
						}
						id := r.header.Get("X-Request-Id")
						if id == "" {
							t.Fatalf("no X-Request-Id")
						}
						if prev, dup := ids[id]; dup {
							t.Errorf("X-Request-Id %q given twice (%s and %s/%s #%d)", id, prev, kind, tc.name, i)
						}
						ids[id] = fmt.Sprintf("%s/%s #%d", kind, tc.name, i)
					}
				})
			}
		})
	}
	// The backend sees the same id as the client.
	c := newH1Client(t)
	r := mustDo(t, c, base, reqSpec{host: "good.test"})
	if s, _ := good.last(); s.Header.Get("X-Request-Id") != r.header.Get("X-Request-Id") {
		t.Errorf("backend got X-Request-Id %q, client %q", s.Header.Get("X-Request-Id"), r.header.Get("X-Request-Id"))
	}
}
