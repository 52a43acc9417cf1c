package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBareLFRequests sends requests whose lines end in a bare LF (RFC 9112
// §2.2), pipelined on one connection with CRLF ones, through the real
// server to a net/http backend: each is proxied with its fields and body
// (a body holding CRLFCRLF is not taken for the end of a head), as nginx
// and net/http take them. A bare CR, and a bare LF in chunked framing,
// are still refused with 400.
func TestBareLFRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s X-A=%s %q", r.Method, r.URL.Path, r.Header.Get("X-A"), body))
		mu.Unlock()
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address = "127.0.0.1:0"
}
http_route "all" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend %q {}
}
`, be.URL))
	exchange := func(raw string, methods ...string) []int {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr("web").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var codes []int
		for _, m := range methods {
			resp, err := http.ReadResponse(br, &http.Request{Method: m})
			if err != nil {
				t.Fatalf("response %d: %v", len(codes)+1, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		return codes
	}

	raw := "GET /a HTTP/1.1\nHost: t.test\nX-A: 1\n\n" +
		"POST /b HTTP/1.1\nHost: t.test\r\nContent-Length: 4\nX-A: 2\n\r\n\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: t.test\r\nX-A: 3\r\nConnection: close\r\n\r\n"
	if got := exchange(raw, "GET", "POST", "GET"); fmt.Sprint(got) != "[200 200 200]" {
		t.Errorf("statuses %v, want [200 200 200]", got)
	}
	mu.Lock()
	got := strings.Join(seen, "\n")
	mu.Unlock()
	if want := "GET /a X-A=1 \"\"\nPOST /b X-A=2 \"\\r\\n\\r\\n\"\nGET /c X-A=3 \"\""; got != want {
		t.Errorf("backend saw:\n%s\nwant:\n%s", got, want)
	}

	for name, raw := range map[string]string{
		"bare CR":                  "GET /x HTTP/1.1\rHost: t.test\r\n\r\n",
		"bare LF in a chunk line":  "POST /x HTTP/1.1\nHost: t.test\nTransfer-Encoding: chunked\n\n3\nabc\r\n0\r\n\r\n",
		"bare LF after chunk data": "POST /x HTTP/1.1\nHost: t.test\nTransfer-Encoding: chunked\n\n3\r\nabc\n0\r\n\r\n",
	} {
		if got := exchange(raw, "POST"); got[0] != 400 {
			t.Errorf("%s: status %d, want 400", name, got[0])
		}
	}
}
