package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/proxynow/proxynow/config"
)

// max_body refuses request bodies longer than Bytes with 413, as soon as
// the limit is crossed and without reading the rest:
//
//   - A Content-Length over the limit is refused before the next handler
//     runs. Over HTTP/1 the answer carries "Connection: close": the unread
//     body must not be parsed as the next request, and reading it just to
//     skip it is what the limit is there to avoid.
//   - A body of unknown length (chunked, or HTTP/2 without content-length)
//     is read through http.MaxBytesReader: the read that crosses the limit
//     fails, and net/http closes the connection after the response
//     instead of draining the body. The handler usually turns that failure
//     into an error of its own — httputil.ReverseProxy answers 502 — so
//     the ResponseWriter is wrapped too: once the limit was crossed, a
//     5xx status written before any other becomes 413 (its body is
//     dropped). A handler that already answered, or that answers with a
//     status below 500, keeps its answer.
//
// A body whose Content-Length is within the limit is passed as it is: the
// server already stops such a body at its declared length.

func newMaxBody(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.MaxBody
	switch {
	case c == nil:
		return nil, errors.New("max_body: missing block")
	case c.Bytes <= 0:
		return nil, fmt.Errorf("max_body: bytes must be greater than 0, got %d", c.Bytes)
	}
	limit := c.Bytes
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.ContentLength > limit:
				if r.ProtoMajor == 1 {
					w.Header().Set("Connection", "close")
				}
				trafficRefuse(w, http.StatusRequestEntityTooLarge)
				return
			case r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody:
				next.ServeHTTP(w, r)
				return
			}
			mw := maxBodyWriter{ResponseWriter: w, http1: r.ProtoMajor == 1}
			// MaxBytesReader gets the server's own ResponseWriter: it tells
			// net/http to close the connection rather than drain the body.
			body := http.MaxBytesReader(w, r.Body, limit)
			var ww http.ResponseWriter
			r2 := new(http.Request)
			*r2 = *r
			switch KindOf(w) {
			case KindNotify:
				ww, r2.Body = newMaxBodyGuard(maxBodyWriterNotify{mw, NotifyExtra{w}}, body)
			case KindH2:
				ww, r2.Body = newMaxBodyGuard(maxBodyWriterH2{mw, H2Extra{w}}, body)
			case KindH3:
				ww, r2.Body = newMaxBodyGuard(maxBodyWriterH3{mw, H3Extra{In: w}}, body)
			default:
				ww, r2.Body = newMaxBodyGuard(mw, body)
			}
			next.ServeHTTP(ww, r2)
		})
	}, nil
}

// maxBodyGuard holds the body and the writer (a maxBodyWriter of the
// server writer's Kind) of one request in one allocation. The body may be
// read on another goroutine than the handler's (the transport of a
// ReverseProxy), hence the atomic flag.
type maxBodyGuard[W any] struct {
	exceeded atomic.Bool
	w        W
	body     maxBodyReader
}

// newMaxBodyGuard is the writer w and the reader of body, guarded.
func newMaxBodyGuard[W any, P interface {
	*W
	http.ResponseWriter
	base() *maxBodyWriter
}](w W, body io.ReadCloser) (http.ResponseWriter, io.ReadCloser) {
	g := &maxBodyGuard[W]{w: w}
	P(&g.w).base().exceeded = &g.exceeded
	g.body = maxBodyReader{ReadCloser: body, exceeded: &g.exceeded}
	return P(&g.w), &g.body
}

type maxBodyReader struct {
	io.ReadCloser
	exceeded *atomic.Bool
}

func (b *maxBodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			b.exceeded.Store(true)
		}
	}
	return n, err
}

// maxBodyWriter turns a 5xx answer to a request whose body crossed the
// limit into 413.
type maxBodyWriter struct {
	http.ResponseWriter
	exceeded *atomic.Bool
	http1    bool
	wrote    bool // a final status was written
	replaced bool // it was replaced by 413: drop the handler's body
}

func (w *maxBodyWriter) WriteHeader(code int) {
	if w.wrote {
		w.ResponseWriter.WriteHeader(code) // let net/http log the superfluous call
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	if !w.exceeded.Load() {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.http1 {
		w.Header().Set("Connection", "close")
	}
	if code < 500 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.replaced = true
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Transfer-Encoding")
	h.Del("Trailer")
	trafficRefuse(w.ResponseWriter, http.StatusRequestEntityTooLarge)
}

func (w *maxBodyWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends the status first through WriteHeader, so that it is seen.
func (w *maxBodyWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.replaced {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *maxBodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *maxBodyWriter) base() *maxBodyWriter { return w }

// maxBodyWriter with the optional interfaces of each Kind (extras.go).
type (
	maxBodyWriterNotify struct {
		maxBodyWriter
		NotifyExtra
	}
	maxBodyWriterH2 struct {
		maxBodyWriter
		H2Extra
	}
	maxBodyWriterH3 struct {
		maxBodyWriter
		H3Extra
	}
)

var (
	_ http.Flusher = (*maxBodyWriter)(nil)
	_ h2Writer     = (*maxBodyWriterH2)(nil)
	_ h3Writer     = (*maxBodyWriterH3)(nil)
	_ io.Reader    = (*maxBodyReader)(nil)
)
