package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
)

// error_pages replaces the body of a response whose status is in Statuses
// by the page Service answers to a GET of Path ("{status}" replaced by the
// code), keeping the original status.
//
// The decision is taken when the handler writes its header: a response
// with another status passes at once, unbuffered, and keeps Flush and
// Hijack. An error response's body is read and dropped. Its headers are
// dropped with it — they describe the discarded body, and the page brings
// its own (Content-Type, Content-Length, caching) — except those that
// carry the status's meaning for the client: WWW-Authenticate and
// Proxy-Authenticate (RFC 9110 sections 11.6.1, 11.7.1, required in a 401
// and 407), Allow (405) and Retry-After (503, 429).
//
// The page request is a bodiless GET with the client's other headers,
// minus the conditional and range ones (the page must come whole). When
// the service is unknown or answers other than 2xx, the client gets the
// original status with a one-line plain text body.
//
// The service is looked up per error response, not at load: constructors
// run before services exist when the configuration is only validated.

// epKept are the original headers an error page keeps: the answer's
// challenges and hints, and the X-Request-Id the entrypoint set.
var epKept = []string{"Www-Authenticate", "Proxy-Authenticate", "Allow", "Retry-After", "X-Request-Id"}

// epDropped are the request headers the page request does without.
var epDropped = []string{
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range",
	"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Expect", "Trailer",
}

type errorPages struct {
	ranges  []config.StatusRange
	service string
	path    string
	env     Env
}

func newErrorPages(m *config.Middleware, env Env) (Middleware, error) {
	c := m.ErrorPages
	switch {
	case c == nil:
		return nil, errors.New("error_pages: missing block")
	case len(c.Statuses) == 0:
		return nil, errors.New("error_pages: no statuses")
	case c.Service == "":
		return nil, errors.New("error_pages: no service")
	case !strings.HasPrefix(c.Path, "/"):
		return nil, fmt.Errorf("error_pages: path %q does not start with \"/\"", c.Path)
	}
	for i, s := range c.Statuses {
		if s.Lo < 100 || s.Hi > 599 || s.Lo > s.Hi {
			return nil, fmt.Errorf("error_pages: statuses[%d] %d-%d is not a range of statuses", i, s.Lo, s.Hi)
		}
	}
	ep := &errorPages{ranges: c.Statuses, service: c.Service, path: c.Path, env: env}
	return ep.wrap, nil
}

func (ep *errorPages) matches(code int) bool {
	for _, s := range ep.ranges {
		if s.Lo <= code && code <= s.Hi {
			return true
		}
	}
	return false
}

func (ep *errorPages) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew, ww := newEPWriter(w, ep)
		next.ServeHTTP(ww, r)
		if ew.state == epIntercept {
			ep.serve(w, r, ew.code, ew.kept)
		}
	})
}

// serve answers code with the page.
func (ep *errorPages) serve(w http.ResponseWriter, r *http.Request, code int, kept http.Header) {
	var h http.Handler
	if ep.env.Service != nil {
		h = ep.env.Service(ep.service)
	}
	if h == nil {
		epFallback(w, code, kept)
		return
	}
	p, err := parseEscPath(strings.ReplaceAll(ep.path, "{status}", strconv.Itoa(code)))
	if err != nil {
		epFallback(w, code, kept)
		return
	}
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Body = http.NoBody
	req.GetBody = nil
	req.ContentLength = 0
	req.TransferEncoding = nil
	req.Trailer = nil
	u := *r.URL
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = p.path, p.raw, "", false, "", ""
	req.URL = &u
	if r.RequestURI != "" {
		req.RequestURI = u.RequestURI()
	}
	for _, k := range epDropped {
		delete(req.Header, k)
	}
	pw := &pageWriter{rw: w, code: code, kept: kept}
	h.ServeHTTP(pw, req)
	switch pw.state {
	case pageIdle:
		pw.WriteHeader(http.StatusOK) // an empty page
	case pageFailed:
		epFallback(w, code, kept)
	}
}

// epFallback is the answer when the page cannot be had.
func epFallback(w http.ResponseWriter, code int, kept http.Header) {
	h := w.Header()
	clear(h)
	for k, v := range kept {
		h[k] = v
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "%d %s\n", code, http.StatusText(code))
}

// epWriter states.
const (
	epIdle      = iota // no final header yet
	epPass             // not an error: straight through
	epIntercept        // an error: its body is dropped
)

// epWriter decides on the final status.
type epWriter struct {
	rw    http.ResponseWriter
	ep    *errorPages
	state int
	code  int
	kept  http.Header
}

var (
	_ http.Flusher  = (*epWriter)(nil)
	_ http.Hijacker = (*epWriter)(nil)
	_ h2Writer      = (*epWriterH2)(nil)
	_ h3Writer      = (*epWriterH3)(nil)
)

// epWriter with the optional interfaces of each Kind (extras.go).
type (
	epWriterNotify struct {
		epWriter
		NotifyExtra
	}
	epWriterH2 struct {
		epWriter
		H2Extra
	}
	epWriterH3 struct {
		epWriter
		H3Extra
	}
)

// newEPWriter wraps rw: the wrapper, and the writer to hand down, which
// has rw's optional interfaces.
func newEPWriter(rw http.ResponseWriter, ep *errorPages) (*epWriter, http.ResponseWriter) {
	ew := epWriter{rw: rw, ep: ep}
	switch KindOf(rw) {
	case KindNotify:
		v := &epWriterNotify{ew, NotifyExtra{rw}}
		return &v.epWriter, v
	case KindH2:
		v := &epWriterH2{ew, H2Extra{rw}}
		return &v.epWriter, v
	case KindH3:
		v := &epWriterH3{epWriter: ew}
		v.H3Extra = H3Extra{In: rw, Owner: &v.epWriter}
		return &v.epWriter, v
	}
	v := &ew
	return v, v
}

func (w *epWriter) Header() http.Header { return w.rw.Header() }

func (w *epWriter) WriteHeader(code int) {
	switch {
	case w.state == epPass:
		w.rw.WriteHeader(code) // net/http reports the superfluous call
		return
	case w.state == epIntercept:
		return
	case code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols:
		w.rw.WriteHeader(code) // interim: the final header follows
		return
	case !w.ep.matches(code):
		w.state = epPass
		w.rw.WriteHeader(code)
		return
	}
	w.state, w.code = epIntercept, code
	h := w.rw.Header()
	for _, k := range epKept {
		if v, ok := h[k]; ok {
			if w.kept == nil {
				w.kept = make(http.Header, 1)
			}
			w.kept[k] = v
		}
	}
	clear(h)
}

func (w *epWriter) Write(p []byte) (int, error) {
	if w.state == epIdle {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == epIntercept {
		return len(p), nil
	}
	return w.rw.Write(p)
}

// Flush sends a passing response on; an error's body goes nowhere.
func (w *epWriter) Flush() {
	if w.state == epIdle {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == epPass {
		_ = http.NewResponseController(w.rw).Flush()
	}
}

// Hijack hands the connection over; nothing is written after.
func (w *epWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.state = epPass
	}
	return c, rw, err
}

// errStreamIntercepted refuses an HTTP/3 stream take-over after a status
// this middleware replaces with a page: the page is the answer.
var errStreamIntercepted = errors.New("error_pages: the response status is answered with an error page; the stream cannot be taken over")

// TakeStream hands the HTTP/3 stream over like Hijack, unless the status
// written is to be answered with a page.
func (w *epWriter) TakeStream(in http3.HTTPStreamer) (*http3.Stream, error) {
	if w.state == epIntercept {
		return nil, errStreamIntercepted
	}
	s, err := in.HTTPStream()
	if err == nil {
		w.state = epPass
	}
	return s, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *epWriter) Unwrap() http.ResponseWriter { return w.rw }

// pageWriter states.
const (
	pageIdle   = iota
	pageOK     // the page goes out with the original status
	pageFailed // the page service failed: its answer is dropped
)

// pageWriter sends the page service's answer with the original status.
type pageWriter struct {
	rw    http.ResponseWriter
	code  int
	kept  http.Header
	state int
}

var _ http.Flusher = (*pageWriter)(nil)

func (w *pageWriter) Header() http.Header { return w.rw.Header() }

func (w *pageWriter) WriteHeader(code int) {
	if w.state != pageIdle || code >= 100 && code <= 199 {
		return
	}
	if code < 200 || code > 299 {
		w.state = pageFailed
		clear(w.rw.Header())
		return
	}
	w.state = pageOK
	h := w.rw.Header()
	for k, v := range w.kept {
		h[k] = v
	}
	w.rw.WriteHeader(w.code)
}

func (w *pageWriter) Write(p []byte) (int, error) {
	if w.state == pageIdle {
		w.WriteHeader(http.StatusOK)
	}
	if w.state != pageOK {
		return len(p), nil
	}
	return w.rw.Write(p)
}

func (w *pageWriter) Flush() {
	if w.state == pageOK {
		_ = http.NewResponseController(w.rw).Flush()
	}
}
