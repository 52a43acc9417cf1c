package l7

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2sContentLengthMismatch: DATA past the declared Content-Length, or
// END_STREAM short of it, resets the stream with PROTOCOL_ERROR (RFC 9113
// 8.1.1) and the handler's read fails (never a clean EOF).
func TestH2sContentLengthMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		cl   string
		send []byte
		end  bool
	}{
		{name: "more", cl: "5", send: []byte("0123456789"), end: true},
		{name: "more-open", cl: "5", send: []byte("0123456789"), end: false},
		{name: "fewer", cl: "10", send: []byte("01234"), end: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				got <- err
			})
			f := startH2Front(t, h, ServerOptions{})
			c := dialH2s(t, f.plain)
			c.req(t, 1, "POST", "/", false, "content-length", tc.cl)
			c.data(t, 1, tc.end, tc.send)
			if code := c.rstOn(t, 1); code != http2.ErrCodeProtocol {
				t.Errorf("RST %v, want PROTOCOL_ERROR", code)
			}
			select {
			case err := <-got:
				if err == nil {
					t.Error("the handler read the body without error")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's read still waits")
			}
			// The connection serves on.
			c.req(t, 3, "GET", "/", true)
			if r := c.response(t, 3); r.reset || r.status() != "200" {
				t.Errorf("next stream: %+v", r)
			}
			<-got
		})
	}
}

// TestH2sRequestTrailers: declared trailers reach r.Trailer once the body
// read returned EOF (net/http forbids reading r.Trailer before); the
// undeclared ones are dropped (x/net keeps them once any was declared).
func TestH2sRequestTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%q %v %q %q", b, err, r.Trailer.Get("X-Check"), r.Trailer.Get("X-Other"))
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "POST", "/", false, "trailer", "x-check")
	c.data(t, 1, false, []byte("body"))
	c.headers(t, 1, true, "x-check", "sum", "x-other", "nope")
	r := c.response(t, 1)
	if want := `"body" <nil> "sum" ""`; string(r.body) != want {
		t.Errorf("handler saw %s, want %s", r.body, want)
	}
}

// TestH2sExpectContinue: a 100 goes out as the handler first reads the
// body, before any of it came; a handler that answers without reading
// sends none.
func TestH2sExpectContinue(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %v", b, err)
			return
		}
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "POST", "/read", false, "expect", "100-continue", "content-length", "5")
	head := c.until(t, "a head", func(f h2sFrame) bool { _, ok := f.f.(*http2.MetaHeadersFrame); return ok })
	if s := field(head.fields, ":status"); s != "100" {
		t.Fatalf("first head %s, want 100", s)
	}
	c.data(t, 1, true, []byte("hello"))
	if r := c.response(t, 1); r.status() != "200" || string(r.body) != "hello <nil>" {
		t.Errorf("after 100: status %s body %q", r.status(), r.body)
	}

	c.req(t, 3, "POST", "/big", false, "expect", "100-continue", "content-length", "5000000")
	r := c.response(t, 3)
	if len(r.heads) != 1 || r.status() != "413" {
		t.Errorf("unread: heads %v, want just a 413", r.heads)
	}
}

// TestH2sRequestForm: how HEADERS become the http.Request (RFC 9113
// 8.3), and the malformed ones refused with PROTOCOL_ERROR.
func TestH2sRequestForm(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s|%s|%q|%q", r.Method, r.Host, r.RequestURI, r.URL, r.Header["Cookie"], r.Header["Host"])
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	for i, tc := range []struct {
		name   string
		fields []string
		want   string // the body; "" for a PROTOCOL_ERROR reset
	}{
		{"cookies", []string{":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/p?q=1", "cookie", "a=1", "cookie", "b=2"},
			`GET|a.example|/p?q=1|/p?q=1|["a=1; b=2"]|[]`},
		{"host-same-as-authority", []string{":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/", "host", "a.example"},
			`GET|a.example|/|/|[]|[]`},
		{"host-differs", []string{":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/", "host", "b.example"}, ""},
		{"host-header", []string{":method", "GET", ":scheme", "http", ":path", "/", "host", "b.example"},
			`GET|b.example|/|/|[]|[]`},
		{"connect", []string{":method", "CONNECT", ":authority", "c.example:443"},
			`CONNECT|c.example:443|c.example:443|//c.example:443|[]|[]`},
		{"no-path", []string{":method", "GET", ":scheme", "http", ":authority", "a"}, ""},
		{"no-method", []string{":scheme", "http", ":authority", "a", ":path", "/"}, ""},
		{"no-scheme", []string{":method", "GET", ":authority", "a", ":path", "/"}, ""},
		{"connect-with-path", []string{":method", "CONNECT", ":authority", "a:1", ":path", "/"}, ""},
		{"connect-no-authority", []string{":method", "CONNECT"}, ""},
		{"uppercase", []string{":method", "GET", ":scheme", "http", ":path", "/", "X-Up", "1"}, ""},
		{"te-gzip", []string{":method", "GET", ":scheme", "http", ":path", "/", "te", "gzip"}, ""},
		{"connection", []string{":method", "GET", ":scheme", "http", ":path", "/", "connection", "close"}, ""},
		{"pseudo-after-regular", []string{":method", "GET", ":scheme", "http", "x", "1", ":path", "/"}, ""},
		{"unknown-pseudo", []string{":method", "GET", ":scheme", "http", ":path", "/", ":foo", "1"}, ""},
		{"empty-path", []string{":method", "GET", ":scheme", "http", ":path", ""}, ""},
	} {
		id := uint32(2*i + 1)
		c.headers(t, id, tc.name != "connect", tc.fields...)
		r := c.response(t, id)
		if tc.want == "" {
			if !r.reset || r.code != http2.ErrCodeProtocol {
				t.Errorf("%s: %+v, want RST PROTOCOL_ERROR", tc.name, r)
			}
			continue
		}
		if r.reset || string(r.body) != tc.want {
			t.Errorf("%s: reset %v (%v) body %q, want %q", tc.name, r.reset, r.code, r.body, tc.want)
		}
	}
}

// TestH2sBodyErrorIsStreamError: a client's RST_STREAM during the upload
// fails the handler's read with an error (not EOF), and cancels its
// context.
func TestH2sBodyErrorIsStreamError(t *testing.T) {
	got := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		<-r.Context().Done()
		got <- err
	})
	f := startH2Front(t, h, ServerOptions{})
	c := dialH2s(t, f.plain)
	c.req(t, 1, "POST", "/", false)
	c.data(t, 1, false, []byte("part"))
	c.write(t, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	select {
	case err := <-got:
		var se http2.StreamError
		if err == nil || errors.Is(err, io.EOF) || !errors.As(err, &se) {
			t.Errorf("read error %v, want a StreamError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still reads")
	}
}

// TestH2sClientTrailers: trailers x/net's client sends after the body
// reach the handler's r.Trailer.
func TestH2sClientTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %q", len(b), err, r.Trailer.Get("X-Sum"))
	})
	f := startH2Front(t, h, ServerOptions{})
	tr := h2Client(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", f.url(true, "/"), &trailerBody{n: 200000})
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body.(*trailerBody).tr = req.Trailer
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `200000 <nil> "done"`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// trailerBody is n zero bytes; at EOF it sets tr's X-Sum.
type trailerBody struct {
	n  int
	tr http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		b.tr.Set("X-Sum", "done")
		return 0, io.EOF
	}
	n := min(len(p), b.n)
	clear(p[:n])
	b.n -= n
	return n, nil
}

func (b *trailerBody) Close() error { return nil }
