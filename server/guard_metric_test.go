package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGuardRejectionsSurviveServerReplace: proxynow_http_guard_rejections_total
// is a counter: a reload that replaces the entrypoint's HTTP server does not
// take it back to zero, and rejections on the new server add to it.
func TestGuardRejectionsSurviveServerReplace(t *testing.T) {
	s := started(t, fmt.Sprintf(httpRespond, "v1"))
	smuggle := func() {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr("web").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// Content-Length and Transfer-Encoding together: the guard's 400.
		fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400 from the guard", resp.StatusCode)
		}
	}
	smuggle()
	if got := metricValue(t, s, "proxynow_http_guard_rejections_total", "entrypoint", "web"); got != 1 {
		t.Fatalf("guard rejections %v, want 1", got)
	}
	ch := reload(t, s, strings.Replace(fmt.Sprintf(httpRespond, "v1"), `entrypoint "web" { address = "127.0.0.1:0" }`,
		`entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts { read_header = "3s" }
}`, 1))
	if ch.HTTPServersReplaced != 1 {
		t.Fatalf("changes %+v: want the HTTP server replaced", ch)
	}
	if got := metricValue(t, s, "proxynow_http_guard_rejections_total", "entrypoint", "web"); got != 1 {
		t.Fatalf("guard rejections %v after the HTTP server was replaced, want still 1", got)
	}
	smuggle()
	if got := metricValue(t, s, "proxynow_http_guard_rejections_total", "entrypoint", "web"); got != 2 {
		t.Fatalf("guard rejections %v, want 2", got)
	}
}

// metricValue reads the counter or gauge of family name whose label key is
// value (0 when there is none).
func metricValue(t *testing.T, s *Server, name, key, value string) float64 {
	t.Helper()
	fams, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == key && l.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
