package l7

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2sResponseHeads: what the head and body of a response are, for
// the handler's shapes net/http gives rules for.
func TestH2sResponseHeads(t *testing.T) {
	writeErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/big":
			w.Write(make([]byte, 10240))
		case "/html":
			io.WriteString(w, "<html><body>hi</body></html>")
		case "/204", "/304":
			code := http.StatusNoContent
			if r.URL.Path == "/304" {
				code = http.StatusNotModified
			}
			w.WriteHeader(code)
			_, err := w.Write([]byte("x"))
			writeErr <- err
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "final")
		case "/empty":
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	for i, tc := range []struct {
		name, method, path string
		statuses           []string
		cl, ctype          string
		body               string
	}{
		{"small", "GET", "/small", []string{"200"}, "5", "text/plain; charset=utf-8", "hello"},
		// HEAD has GET's fields (RFC 9110 9.3.2), Content-Type too.
		{"head-small", "HEAD", "/small", []string{"200"}, "5", "text/plain; charset=utf-8", ""},
		{"head-big", "HEAD", "/big", []string{"200"}, "10240", "application/octet-stream", ""},
		{"head-sniff", "HEAD", "/html", []string{"200"}, "28", "text/html; charset=utf-8", ""},
		{"big-streams", "GET", "/big", []string{"200"}, "", "application/octet-stream", strings.Repeat("\x00", 10240)},
		{"sniff", "GET", "/html", []string{"200"}, "28", "text/html; charset=utf-8", "<html><body>hi</body></html>"},
		{"204", "GET", "/204", []string{"204"}, "", "", ""},
		{"304", "GET", "/304", []string{"304"}, "", "", ""},
		{"hints", "GET", "/hints", []string{"103", "200"}, "5", "text/plain; charset=utf-8", "final"},
		{"empty", "GET", "/empty", []string{"200"}, "0", "", ""},
		{"head-empty", "HEAD", "/empty", []string{"200"}, "", "", ""},
	} {
		id := uint32(2*i + 1)
		c.req(t, id, tc.method, tc.path, true)
		r := c.response(t, id)
		var statuses []string
		for _, hd := range r.heads {
			statuses = append(statuses, field(hd, ":status"))
		}
		if r.reset || fmt.Sprint(statuses) != fmt.Sprint(tc.statuses) {
			t.Errorf("%s: reset %v (%v), heads %v, want %v", tc.name, r.reset, r.code, statuses, tc.statuses)
			continue
		}
		final := r.heads[len(r.heads)-1]
		if got := field(final, "content-length"); got != tc.cl {
			t.Errorf("%s: content-length %q, want %q", tc.name, got, tc.cl)
		}
		if got := field(final, "content-type"); got != tc.ctype {
			t.Errorf("%s: content-type %q, want %q", tc.name, got, tc.ctype)
		}
		if string(r.body) != tc.body {
			t.Errorf("%s: body of %d bytes, want %d", tc.name, len(r.body), len(tc.body))
		}
		if tc.name == "hints" {
			if l := field(r.heads[0], "link"); l == "" {
				t.Errorf("103 without its Link")
			}
			if l := field(final, "link"); l != "" {
				t.Errorf("final head kept the 103's Link %q", l)
			}
		}
		if tc.name == "204" || tc.name == "304" {
			if err := <-writeErr; !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("%s: Write = %v, want ErrBodyNotAllowed", tc.name, err)
			}
		}
	}
}

// TestH2sShortBody: a handler that writes less than its Content-Length
// gets its stream reset, never a clean END_STREAM.
func TestH2sShortBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 10
		if r.URL.Path == "/big" {
			n = 100000
		}
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.Write(make([]byte, n/2))
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	for i, path := range []string{"/small", "/big"} {
		id := uint32(2*i + 1)
		c.req(t, id, "GET", path, true)
		if r := c.response(t, id); !r.reset {
			t.Errorf("%s: ended cleanly with %d bytes", path, len(r.body))
		}
	}
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(f.url(false, "/big"))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("x/net's client read a short body without error")
	}
}

// TestH2sResponseTrailers: declared trailers and http.TrailerPrefix ones
// reach x/net's client, and not in the head.
func TestH2sResponseTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 100000))
		} else {
			io.WriteString(w, "body")
		}
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l")
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, path := range []string{"/small", "/big"} {
		resp, err := cl.Get(f.url(true, path))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("X-Declared") != "" || resp.Header.Get("X-Late") != "" {
			t.Errorf("%s: trailers in the head: %v", path, resp.Header)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Late") != "l" {
			t.Errorf("%s: trailers %v", path, resp.Trailer)
		}
	}
}

// TestH2sBigHead: a response head past 16 KiB goes out as HEADERS and
// CONTINUATION frames, and x/net's client reads it.
func TestH2sBigHead(t *testing.T) {
	big := strings.Repeat("v", 40000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		io.WriteString(w, "ok")
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/", true)
	r := c.response(t, 1)
	if r.reset || field(r.heads[0], "x-big") != big || string(r.body) != "ok" {
		t.Fatalf("raw: reset %v, body %q", r.reset, r.body)
	}
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(f.url(false, "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Big") != big {
		t.Error("x/net's client lost X-Big")
	}
}

// TestH2sHandlerPanic: a handler's panic (or http.ErrAbortHandler) resets
// its stream; the connection and its other streams serve on.
func TestH2sHandlerPanic(t *testing.T) {
	slow := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			w.Header().Set("X", "1")
			io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/slow":
			<-slow
		}
		io.WriteString(w, "fine")
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "GET", "/slow", true)
	c.req(t, 3, "GET", "/panic", true)
	if r := c.response(t, 3); !r.reset || r.code != http2.ErrCodeInternal {
		t.Errorf("panic: %+v, want RST INTERNAL_ERROR", r)
	}
	c.req(t, 5, "GET", "/abort", true)
	if r := c.response(t, 5); !r.reset {
		t.Errorf("abort: %+v, want a reset", r)
	}
	close(slow)
	if r := c.response(t, 1); r.reset || string(r.body) != "fine" {
		t.Errorf("other stream: %+v", r)
	}
	c.req(t, 7, "GET", "/", true)
	if r := c.response(t, 7); r.reset || string(r.body) != "fine" {
		t.Errorf("next stream: %+v", r)
	}
}
