package middleware

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
)

// headers edits the request before the next handler and the response when
// that handler writes its header.
//
// Each side applies remove, then set, then add: `remove` strips what the
// other party sent, `set` replaces, `add` appends a value. A request `set`
// of Host changes the request's host (net/http keeps it outside Header).
//
// On the response, the defaults come first and the user's operations last,
// so an explicit response remove/set/add always has the final word:
//
//   - cors (cors.go): preflights are answered here; other requests with an
//     allowed Origin get Access-Control-Allow-* and Expose-Headers, set over
//     the backend's.
//   - hsts: Strict-Transport-Security on requests that came over TLS only
//     (RFC 6797 §7.2: a browser ignores it over plain HTTP), unless the
//     backend sent its own; max_age defaults to one year.
//   - security: X-Content-Type-Options: nosniff, X-Frame-Options:
//     SAMEORIGIN, Referrer-Policy: strict-origin-when-cross-origin, each
//     unless the backend sent one.
//
// 1xx informational responses (103 Early Hints) pass through untouched. The
// response writer keeps http.Flusher and http.Hijacker (WebSocket through
// httputil.ReverseProxy) and Unwrap, so http.ResponseController reaches the
// server's writer. A handler that hijacks writes its response itself (the
// 101 of a WebSocket upgrade): that response is not decorated.
//
// Header values are built once at load and shared by every request as
// one-element slices with capacity 1: net/http and httputil only replace
// or append header values, and an append copies.

type hdOp struct {
	key string
	val []string
}

// hdOps is one side's operations, in the order applied.
type hdOps struct {
	remove []string
	set    []hdOp
	add    []hdOp
	host   string // request set of Host, "" for none
}

func (o *hdOps) empty() bool {
	return len(o.remove) == 0 && len(o.set) == 0 && len(o.add) == 0 && o.host == ""
}

func (o *hdOps) apply(h http.Header) {
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, op := range o.set {
		h[op.key] = op.val
	}
	for _, op := range o.add {
		hdAppend(h, op.key, op.val)
	}
}

// hdAppend adds the shared value v to h[k], without allocating when k was
// absent.
func hdAppend(h http.Header, k string, v []string) {
	if len(h[k]) == 0 {
		h[k] = v
	} else {
		h[k] = append(h[k], v[0])
	}
}

type headers struct {
	req, resp hdOps
	cors      *cors
	hsts      []string // the Strict-Transport-Security value, nil for none
	security  bool
}

var (
	hdNosniff    = []string{"nosniff"}
	hdSameOrigin = []string{"SAMEORIGIN"}
	hdReferrer   = []string{"strict-origin-when-cross-origin"}
)

func newHeaders(m *config.Middleware, _ Env) (Middleware, error) {
	h, err := buildHeaders(m.Headers)
	if err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	return h.wrap, nil
}

func buildHeaders(c *config.Headers) (*headers, error) {
	if c == nil {
		return nil, errors.New("missing block")
	}
	h := &headers{security: c.Security}
	var err error
	if h.req, err = hdBuildOps(c.Request, true); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if h.resp, err = hdBuildOps(c.Response, false); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if c.CORS != nil {
		if h.cors, err = buildCORS(c.CORS); err != nil {
			return nil, fmt.Errorf("cors: %w", err)
		}
	}
	if s := c.HSTS; s != nil {
		age := s.MaxAge
		if age <= 0 {
			age = config.DefaultHSTSMaxAge
		}
		v := "max-age=" + strconv.FormatInt(int64(age.Seconds()), 10)
		if s.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if s.Preload {
			v += "; preload"
		}
		h.hsts = hdValue(v)
	}
	return h, nil
}

// hdValue is a shared header value: one element, capacity 1.
func hdValue(v string) []string { return []string{v}[:1:1] }

func hdBuildOps(c config.HeaderOps, request bool) (hdOps, error) {
	var o hdOps
	valid := func(k, v string) error {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
			return fmt.Errorf("%q is not a header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("the value of %s holds a line break or NUL", k)
		}
		return nil
	}
	for _, k := range c.Remove {
		if err := valid(k, ""); err != nil {
			return o, err
		}
		o.remove = append(o.remove, http.CanonicalHeaderKey(k))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Set)) {
		v := c.Set[k]
		if err := valid(k, v); err != nil {
			return o, err
		}
		k = http.CanonicalHeaderKey(k)
		if request && k == "Host" {
			o.host = v
			continue
		}
		o.set = append(o.set, hdOp{k, hdValue(v)})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Add)) {
		v := c.Add[k]
		if err := valid(k, v); err != nil {
			return o, err
		}
		o.add = append(o.add, hdOp{http.CanonicalHeaderKey(k), hdValue(v)})
	}
	return o, nil
}

func (h *headers) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.cors != nil && h.cors.isPreflight(r) {
			h.cors.preflight(w.Header(), r)
			h.decorate(w.Header(), r)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.req.apply(r.Header)
		if h.req.host != "" {
			r.Host = h.req.host
		}
		if h.resp.empty() && h.cors == nil && !h.security && (h.hsts == nil || r.TLS == nil) {
			next.ServeHTTP(w, r)
			return
		}
		hw, ww := newHDWriter(w, h, r)
		next.ServeHTTP(ww, r)
		if !hw.done {
			// The handler wrote nothing: net/http sends 200 with this header
			// after we return.
			hw.done = true
			h.respond(w.Header(), r)
		}
	})
}

// respond decorates a final response's header: CORS, then decorate.
func (h *headers) respond(hdr http.Header, r *http.Request) {
	if h.cors != nil {
		h.cors.actual(hdr, r)
	}
	h.decorate(hdr, r)
}

// decorate applies HSTS, the security headers and the user's response
// operations.
func (h *headers) decorate(hdr http.Header, r *http.Request) {
	if h.hsts != nil && r.TLS != nil && len(hdr["Strict-Transport-Security"]) == 0 {
		hdr["Strict-Transport-Security"] = h.hsts
	}
	if h.security {
		for _, d := range [...]struct {
			k string
			v []string
		}{
			{"X-Content-Type-Options", hdNosniff},
			{"X-Frame-Options", hdSameOrigin},
			{"Referrer-Policy", hdReferrer},
		} {
			if len(hdr[d.k]) == 0 {
				hdr[d.k] = d.v
			}
		}
	}
	h.resp.apply(hdr)
}

// hdWriter applies the response side when the handler writes its header.
type hdWriter struct {
	rw   http.ResponseWriter
	h    *headers
	r    *http.Request
	done bool
}

var (
	_ http.Flusher  = (*hdWriter)(nil)
	_ http.Hijacker = (*hdWriter)(nil)
	_ h2Writer      = (*hdWriterH2)(nil)
	_ h3Writer      = (*hdWriterH3)(nil)
)

// hdWriter with the optional interfaces of each Kind (extras.go).
type (
	hdWriterNotify struct {
		hdWriter
		NotifyExtra
	}
	hdWriterH2 struct {
		hdWriter
		H2Extra
	}
	hdWriterH3 struct {
		hdWriter
		H3Extra
	}
)

// newHDWriter wraps rw: the wrapper, and the writer to hand down, which
// has rw's optional interfaces.
func newHDWriter(rw http.ResponseWriter, h *headers, r *http.Request) (*hdWriter, http.ResponseWriter) {
	hw := hdWriter{rw: rw, h: h, r: r}
	switch KindOf(rw) {
	case KindNotify:
		v := &hdWriterNotify{hw, NotifyExtra{rw}}
		return &v.hdWriter, v
	case KindH2:
		v := &hdWriterH2{hw, H2Extra{rw}}
		return &v.hdWriter, v
	case KindH3:
		v := &hdWriterH3{hdWriter: hw}
		v.H3Extra = H3Extra{In: rw, Owner: &v.hdWriter}
		return &v.hdWriter, v
	}
	v := &hw
	return v, v
}

func (w *hdWriter) Header() http.Header { return w.rw.Header() }

func (w *hdWriter) WriteHeader(code int) {
	// 1xx other than 101 are interim: net/http writes them at once and the
	// final header follows.
	if !w.done && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		w.done = true
		w.h.respond(w.rw.Header(), w.r)
	}
	w.rw.WriteHeader(code)
}

func (w *hdWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.rw.Write(b)
}

// Flush sends the header (200 when none was written) and what is
// buffered; it does nothing when the server's writer cannot flush.
func (w *hdWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.rw).Flush()
}

// Hijack hands the connection over; the handler writes the response
// itself, so nothing is decorated after.
func (w *hdWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.done = true
	return http.NewResponseController(w.rw).Hijack()
}

// TakeStream hands the HTTP/3 stream over like Hijack: the header, sent
// by then or never, is not decorated after.
func (w *hdWriter) TakeStream(in http3.HTTPStreamer) (*http3.Stream, error) {
	s, err := in.HTTPStream()
	if err == nil {
		w.done = true
	}
	return s, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *hdWriter) Unwrap() http.ResponseWriter { return w.rw }
