package l7

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Rapid reset (CVE-2023-44487): a client opens streams and resets them at
// once, over and over. x/net bounds the handlers running at a time
// (SETTINGS_MAX_CONCURRENT_STREAMS) and closes the connection when the
// queue of handlers not yet started grows past four times that, but a
// handler that ends as soon as its stream is reset never lets the queue
// grow: each reset stream still costs the proxy a handler and a backend
// request, and an HTTP/1 backend connection (a request cancelled on the
// wire cannot be finished, so its connection is closed). One connection
// could make the backend accept thousands of connections a second.
//
// A client can also make the server reset its streams (MadeYouReset,
// CVE-2025-8671: a WINDOW_UPDATE of 0, DATA past the declared length),
// which x/net does not count either.
//
// So each connection has a budget of streams that end cancelled while
// their handler ran (either side reset them, or the connection went):
// h2ResetBurst at once, refilled at h2ResetRate a second, as a token
// bucket. A connection that overdraws it is closed, as nginx closes one
// past its per-iteration stream limit and HAProxy one past its glitch
// threshold. A browser that cancels a page's requests, or a gRPC client
// whose deadlines expire at a hundred a second, stays well within it.
//
// The close is a TCP close, not a GOAWAY ENHANCE_YOUR_CALM: x/net gives
// no way to send a GOAWAY on one connection, and writing one beside it
// could cut one of its frames in two.
const (
	h2ResetBurst = 200
	h2ResetRate  = 100 // a second
)

// h2ConnHandler serves one HTTP/2 connection's streams: the server's
// handler with the connection's reset budget.
type h2ConnHandler struct {
	s      *h2Server
	c      net.Conn      // what x/net serves: closing it ends the connection
	resets *rate.Limiter // the reset budget, a token bucket
	closed atomic.Bool
}

func newH2ConnHandler(s *h2Server, c net.Conn) *h2ConnHandler {
	return &h2ConnHandler{s: s, c: c, resets: rate.NewLimiter(h2ResetRate, h2ResetBurst)}
}

// ServeHTTP serves a stream (h2Server.serveStream), then checks the
// reset budget. x/net calls it as the handler itself, not through an
// http.HandlerFunc: a frame less for growStack to copy.
func (h *h2ConnHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// x/net runs each stream's handler on a new goroutine: its stack is
	// grown here, where the fewest frames are on it to copy (the Observer
	// grows only HTTP/3's).
	growStack()
	h.s.serveStream(w, r)
	// x/net cancels the stream's context when the client resets it or
	// the connection ends; never when the handler returns normally.
	if r.Context().Err() != nil {
		h.cancelled()
	}
}

// cancelled takes a stream from the budget and closes the connection
// when none is left, counting and logging the close once.
func (h *h2ConnHandler) cancelled() { h.cancelledAt(time.Now()) }

func (h *h2ConnHandler) cancelledAt(now time.Time) {
	if h.resets.AllowN(now, 1) || !h.closed.CompareAndSwap(false, true) {
		return
	}
	if h.s.resetCloses != nil {
		h.s.resetCloses.Inc()
	}
	h.s.log.Warn("closing HTTP/2 connection: too many streams cancelled while served (rapid reset)",
		"remote", h.c.RemoteAddr().String(), "limit_per_second", h2ResetRate)
	h.c.Close()
}
