package quic

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/time/rate"
)

// Rapid reset (CVE-2023-44487) over HTTP/3: a client sends a whole
// request on a stream and at once asks the server to stop sending its
// answer (STOP_SENDING), over and over. quic-go bounds the streams open
// at a time (MaxIncomingStreams) and gives new ones as old ones end, but
// a handler ends as soon as its stream is cancelled: each stream costs a
// handler, a backend request and, HTTP/1 behind, a backend connection (a
// request cancelled on the wire cannot be finished). One client made a
// backend accept 19,896 connections in 3 seconds.
//
// So each connection has a budget of requests cancelled while their
// handler ran, as l7's HTTP/2 server has (l7/h2reset.go, where the
// numbers are explained): resetBurst at once, refilled at resetRate a
// second. A connection that overdraws it is closed with
// H3_EXCESSIVE_LOAD (RFC 9114 §8.1).
const (
	resetBurst = 200
	resetRate  = 100 // a second
)

type resetsKey struct{}

// connResets is one connection's budget.
type connResets struct {
	c      *quicgo.Conn
	lim    *rate.Limiter // a token bucket
	closed atomic.Bool
}

func newConnResets(c *quicgo.Conn) *connResets {
	return &connResets{c: c, lim: rate.NewLimiter(resetRate, resetBurst)}
}

// resetsContext gives a new connection its budget (http3.Server's
// ConnContext).
func resetsContext(ctx context.Context, c *quicgo.Conn) context.Context {
	return context.WithValue(ctx, resetsKey{}, newConnResets(c))
}

// take spends one request from the budget at now; it is true, once, when
// none was left.
func (r *connResets) take(now time.Time) bool {
	return !r.lim.AllowN(now, 1) && r.closed.CompareAndSwap(false, true)
}

// resetBudget serves with h, then spends from the connection's budget if
// the request was cancelled meanwhile (quic-go cancels its context when
// the client stops the stream, or the connection ends; never before the
// handler returns otherwise). A connection closed for it is logged and
// counted in closes (nil: not counted), once.
func resetBudget(h http.Handler, log *slog.Logger, closes prometheus.Counter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Context().Err() == nil {
			return
		}
		if cr, ok := r.Context().Value(resetsKey{}).(*connResets); ok && cr.take(time.Now()) {
			if closes != nil {
				closes.Inc()
			}
			log.Warn("closing HTTP/3 connection: too many requests cancelled while served (rapid reset)",
				"remote", cr.c.RemoteAddr().String(), "limit_per_second", resetRate)
			_ = cr.c.CloseWithError(quicgo.ApplicationErrorCode(http3.ErrCodeExcessiveLoad), "too many cancelled requests")
		}
	})
}
