package l7

import (
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/time/rate"
)

// Rapid reset (CVE-2023-44487): a client opens streams and resets them at
// once, over and over. SETTINGS_MAX_CONCURRENT_STREAMS bounds the streams
// open at a time, and the handlers of reset streams that have not ended
// yet are bounded at four times that (as x/net bounds them), but a
// handler that ends as soon as its stream is reset never reaches that:
// each reset stream still costs the proxy a handler and a backend
// request, and an HTTP/1 backend connection (a request cancelled on the
// wire cannot be finished, so its connection is closed). One connection
// could make the backend accept thousands of connections a second.
//
// A client can also make the server reset its streams (MadeYouReset,
// CVE-2025-8671: a WINDOW_UPDATE of 0, DATA past the declared length),
// which would not count otherwise.
//
// So each connection has a budget of streams that end cancelled while
// their handler ran (either side reset them, or the connection went):
// h2ResetBurst at once, refilled at h2ResetRate a second, as a token
// bucket. A connection that overdraws it is closed, as nginx closes one
// past its per-iteration stream limit and HAProxy one past its glitch
// threshold. A browser that cancels a page's requests, or a gRPC client
// whose deadlines expire at a hundred a second, stays well within it.
//
// The connection gets a GOAWAY ENHANCE_YOUR_CALM, then is closed.
const (
	h2ResetBurst = 200
	h2ResetRate  = 100 // a second
)

// h2ResetBudget is a connection's budget of cancelled streams.
type h2ResetBudget struct {
	lim    *rate.Limiter // a token bucket
	closed atomic.Bool
}

func (b *h2ResetBudget) init() { b.lim = rate.NewLimiter(h2ResetRate, h2ResetBurst) }

// cancelled takes a stream from the budget and closes the connection
// when none is left, counting and logging the close once.
func (c *h2Conn) cancelled() { c.cancelledAt(time.Now()) }

func (c *h2Conn) cancelledAt(now time.Time) {
	if c.resets.lim.AllowN(now, 1) || !c.resets.closed.CompareAndSwap(false, true) {
		return
	}
	if c.s.resetCloses != nil {
		c.s.resetCloses.Inc()
	}
	c.s.log.Warn("closing HTTP/2 connection: too many streams cancelled while served (rapid reset)",
		"remote", c.remote, "limit_per_second", h2ResetRate)
	c.mu.Lock()
	c.goingAway = true
	last := c.lastID
	c.mu.Unlock()
	c.writeFrames(func() error {
		return c.wfr.WriteGoAway(last, http2.ErrCodeEnhanceYourCalm, []byte("too many streams cancelled"))
	})
	c.nc.Close()
}
