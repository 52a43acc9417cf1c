package l7

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestH2DateLikeXNet: the HTTP/2 writer's Date follows x/net's rules:
// a handler that sets Date to nil sends none; HEAD and 304 answers get
// one; trailers (declared, and http.TrailerPrefix ones set after the
// body) arrive as the handler set them, without a Date among them; a
// Write after a 103 gets one on the final answer only.
func TestH2DateLikeXNet(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nil":
			w.Header()["Date"] = nil
			io.WriteString(w, "hello")
		case "/nil-header":
			w.Header()["Date"] = nil
			w.WriteHeader(http.StatusAccepted)
		case "/head":
			w.Header().Set("Content-Length", "5")
		case "/304":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "hello")
			w.Header().Set("X-Sum", "1")
			w.Header().Set(http.TrailerPrefix+"X-Late", "2")
		}
	})
	type want struct {
		method string
		status int
		date   bool
	}
	cases := map[string]want{
		"/nil":        {http.MethodGet, 200, false},
		"/nil-header": {http.MethodGet, 202, false},
		"/head":       {http.MethodHead, 200, true},
		"/304":        {http.MethodGet, 304, true},
		"/trailers":   {http.MethodGet, 200, true},
	}
	for _, idle := range []time.Duration{30 * time.Second, 0} {
		f := startH2Front(t, h, ServerOptions{IdleTimeout: idle})
		tr := h2Client(true)
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: time.Minute}
		for path, wt := range cases {
			t.Run(idle.String()+path, func(t *testing.T) {
				req, err := http.NewRequest(wt.method, f.url(true, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != wt.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, wt.status)
				}
				if got := resp.Header.Values("Date"); (len(got) == 1) != wt.date || len(got) > 1 {
					t.Fatalf("Date fields %q, want one: %v", got, wt.date)
				}
				if path != "/trailers" {
					return
				}
				if string(body) != "hello" {
					t.Fatalf("body %q", body)
				}
				if resp.Trailer.Get("X-Sum") != "1" || resp.Trailer.Get("X-Late") != "2" || len(resp.Trailer) != 2 {
					t.Fatalf("trailers %v, want X-Sum and X-Late only", resp.Trailer)
				}
			})
		}
	}
}
