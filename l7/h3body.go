package l7

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// HTTP3 is the entry of the HTTP/3 side: EarlyData, and a settled request
// body. quic-go's server gives every request a body and, without a
// Content-Length, ContentLength -1, even for a GET whose HEADERS frame
// ended the stream. The proxy would then send it through net/http's
// Transport (which probes such a body from a goroutine with a timer per
// request) instead of h1Transport's fast path. So, for methods that
// usually have no body, one byte is read first: EOF makes the body
// http.NoBody with ContentLength 0, as HTTP/1.1 and HTTP/2 requests have;
// a byte is put back in front of the rest. A client that neither sends a
// byte nor ends the stream within wait (the entrypoint's read_header
// timeout) gets 408; wait <= 0 waits as long as the connection lives.
func HTTP3(h http.Handler, wait time.Duration) http.Handler {
	h = EarlyData(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == -1 && r.Body != nil && r.Body != http.NoBody && usuallyBodiless(r.Method) {
			if code := settleBody(w, r, wait); code != 0 {
				writeError(w, code)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// usuallyBodiless are the methods net/http's Transport probes for the
// same reason (transfer.go, requestMethodUsuallyLacksBody).
func usuallyBodiless(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions, "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// readDeadliner is http3's ResponseWriter (its stream's read deadline).
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// settleBody reads r's first body byte and rewrites r.Body; it returns
// the status to answer with when the body cannot be read.
func settleBody(w http.ResponseWriter, r *http.Request, wait time.Duration) int {
	d, ok := w.(readDeadliner)
	ok = ok && wait > 0
	if ok {
		_ = d.SetReadDeadline(time.Now().Add(wait))
	}
	var b [1]byte
	n, err := r.Body.Read(b[:])
	if ok {
		_ = d.SetReadDeadline(time.Time{})
	}
	switch {
	case n == 1:
		r.Body = &prefixBody{b: b[0], err: err, rc: r.Body}
	case err == io.EOF:
		r.Body, r.ContentLength = http.NoBody, 0
	case err == nil:
		// A Read of nothing and no error: leave the body to the reader.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return http.StatusRequestTimeout
		}
		return http.StatusBadRequest
	}
	return 0
}

// prefixBody is a body whose first byte was read by settleBody; err is
// what that read returned with it (nil, or io.EOF for a 1-byte body).
type prefixBody struct {
	b    byte
	done bool
	err  error
	rc   io.ReadCloser
}

func (p *prefixBody) Read(b []byte) (int, error) {
	if !p.done {
		if len(b) == 0 {
			return 0, nil
		}
		p.done = true
		b[0] = p.b
		return 1, p.err
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.rc.Read(b)
}

func (p *prefixBody) Close() error { return p.rc.Close() }
