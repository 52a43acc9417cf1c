package l7

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"testing"
	"time"
)

// TestH2ResponseDate: an HTTP/2 response gets one Date field, the current
// one, however its header is settled (a body written, WriteHeader, a
// flush alone), with the stalled-stream writer (timeouts.idle) and
// without; a handler's own Date (the backend's) goes out alone and
// unchanged; a 103 Early Hints before the answer carries none.
func TestH2ResponseDate(t *testing.T) {
	const own = "Mon, 02 Jan 2006 15:04:05 GMT"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/write":
			io.WriteString(w, "hello")
		case "/header":
			w.WriteHeader(http.StatusNoContent)
		case "/flush":
			http.NewResponseController(w).Flush()
		case "/own":
			w.Header().Set("Date", own)
			io.WriteString(w, "hello")
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "hello")
		}
	})
	for _, idle := range []time.Duration{30 * time.Second, 0} {
		f := startH2Front(t, h, ServerOptions{IdleTimeout: idle})
		tr := h2Client(true)
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: time.Minute}
		for _, path := range []string{"/write", "/header", "/flush", "/own", "/hints"} {
			t.Run(idle.String()+path, func(t *testing.T) {
				var mu sync.Mutex
				var hints []textproto.MIMEHeader
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
						mu.Lock()
						hints = append(hints, h)
						mu.Unlock()
						return nil
					},
				})
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url(true, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				before := time.Now().Truncate(time.Second)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				after := time.Now()
				dates := resp.Header.Values("Date")
				if len(dates) != 1 {
					t.Fatalf("Date fields %q, want one", dates)
				}
				if path == "/own" {
					if dates[0] != own {
						t.Fatalf("Date %q, want the handler's %q", dates[0], own)
					}
					return
				}
				d, err := http.ParseTime(dates[0])
				if err != nil {
					t.Fatalf("Date %q: %v", dates[0], err)
				}
				if d.Before(before.Add(-time.Second)) || d.After(after.Add(time.Second)) {
					t.Fatalf("Date %v, not between %v and %v", d, before, after)
				}
				mu.Lock()
				defer mu.Unlock()
				if path == "/hints" {
					if len(hints) != 1 || hints[0].Get("Link") == "" {
						t.Fatalf("1xx headers %v, want one 103 with its Link", hints)
					}
					if v := hints[0].Values("Date"); len(v) != 0 {
						t.Fatalf("103 carries Date %q", v)
					}
				}
			})
		}
	}
}
