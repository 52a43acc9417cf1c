package l7

import (
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
)

// Informational (1xx) responses from a backend — 103 Early Hints, a
// backend's own 100 Continue — are passed to the client before the final
// response, as httputil.ReverseProxy does. On the fast HTTP/1 path the
// response is read on the handler's goroutine, which calls forward1xx
// directly through the request's reqInfo (nothing to allocate unless a
// 1xx arrives); net/http's Transport reports them from its own goroutine
// through an httptrace hook, installed only for the requests that take
// that path.

// forward1xx writes one informational response with the backend's header
// fields only, and leaves w's header as it was for the final response.
func forward1xx(w http.ResponseWriter, code int, hdr http.Header) {
	h := w.Header()
	saved := h.Clone()
	clear(h)
	for k, vv := range hdr {
		h[k] = vv
	}
	w.WriteHeader(code)
	clear(h)
	for k, vv := range saved {
		h[k] = vv
	}
}

// trace1xx forwards the 1xx responses net/http's Transport reports, until
// the round trip has returned (the handler owns w from then on).
type trace1xx struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	done  bool
	trace httptrace.ClientTrace
}

func (t *trace1xx) got1xx(code int, hdr textproto.MIMEHeader) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		forward1xx(t.w, code, http.Header(hdr))
	}
	return nil
}

// install returns req with the hook in its context.
func (t *trace1xx) install(w http.ResponseWriter, req *http.Request) *http.Request {
	t.w = w
	t.trace.Got1xxResponse = t.got1xx
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &t.trace))
}

// finish stops forwarding: the round trip has returned.
func (t *trace1xx) finish() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}
