package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
)

// httpParkAfter is how long a plaintext HTTP/1.1 connection waits for its
// next request inside the HTTP server before handoff takes it back (l7's
// ServerOptions.ParkIdleAfter): a parked connection costs a small record
// in the listener's epoll waiter (park.go) instead of the server's
// goroutine and 8 KiB of buffers. Handing it to the HTTP server
// again costs a few microseconds, nothing next to the 100ms the client
// stayed silent; a client that keeps a connection busy never parks.
var httpParkAfter = 100 * time.Millisecond // a var for the tests

// handoff is the l4.Handler that gives connections to the listener's HTTP
// server. It detaches them: l4 keeps them on its books (max_connections,
// drain on shutdown) until the HTTP server closes them, with no goroutine
// of its own waiting meanwhile. A plaintext connection the HTTP server
// parks (l7.IdleParker) waits for its next request in the listener's
// parkedConns (park.go), then goes to the HTTP server in place then, which
// after a reload may be another one.
type handoff struct{ l *listener }

var _ l4.Handler = handoff{}

func (h handoff) ServeTCP(ctx context.Context, c *l4.Conn) {
	if len(c.Prefix) > 0 {
		// tlsmux peeked these bytes into a pooled buffer that it reuses
		// once ServeTCP returns.
		c.Prefix = append([]byte(nil), c.Prefix...)
	}
	c.Detach()
	if c.Stream != nil {
		h.hand(ctx, c, c.Stream)
		return
	}
	h.hand(ctx, c, &parkable{Conn: c, ctx: ctx, h: h})
}

// hand gives conn to the current HTTP server, or closes c.
func (h handoff) hand(ctx context.Context, c *l4.Conn, conn net.Conn) {
	for {
		hs := h.l.http.Load()
		if hs == nil {
			c.Close()
			return
		}
		err := hs.ln.Push(ctx, conn)
		if err == nil {
			return
		}
		if ctx.Err() != nil || h.l.http.Load() == hs {
			c.Close()
			return
		}
		// A reload replaced the HTTP server while this connection was on
		// its way: the new one takes it.
	}
}

// buildHTTP makes the entry handler of an entrypoint with http_routes: the
// router over the routes' trackers.
func (g *generation) buildHTTP(ep *config.Entrypoint, k listenerKey, routes []*config.HTTPRoute) (http.Handler, error) {
	var rs []*l7.Route
	for _, r := range routes {
		t, err := g.httpTracker(ep, k, r)
		if err != nil {
			return nil, err
		}
		_, proxied := g.services[r.Service].handler.(*l7.Proxy)
		rs = append(rs, &l7.Route{Config: r, Handler: t, Upgrades: proxied})
	}
	router, err := l7.NewRouter(rs)
	if err != nil {
		return nil, err
	}
	// Shadowed-route warnings were logged when this entrypoint's routes
	// were last compiled; a reload that leaves them alone says nothing (and
	// saves the search, the dearest part of compiling 10,000 routes).
	h := sha256.New()
	for _, r := range routes {
		h.Write([]byte(g.routeFPs["http_route "+r.Name]))
		h.Write([]byte(r.Pos.String()))
	}
	sum := string(h.Sum(nil))
	g.warned[k] = sum
	if g.prev.warned[k] != sum {
		g.warnings = append(g.warnings, router.WarningsOn(ep.Name)...)
	}
	e := l7.NewEntry(ep.Name, router, ep.HTTP.TrustedProxies, g.s.log)
	if len(ep.HTTP.Middlewares) > 0 {
		t, err := g.noRouteTracker(ep, k)
		if err != nil {
			return nil, err
		}
		e.SetNoRoute(t)
	}
	entry := g.acmeHandler(e)
	return l7.NewObserver(entry, ep.Name, routes, g.s.metrics.HTTP, &g.s.accessLog), nil
}

// noRouteTracker is l7.NoRoute (404, 405 for CONNECT) wrapped in the
// entrypoint's middlewares, so that they see the requests no route takes
// too; tracked under the route name "", which no http_route has, and
// reused like a route's tracker when the middlewares are unchanged.
func (g *generation) noRouteTracker(ep *config.Entrypoint, k listenerKey) (*reqTracker, error) {
	mws, fp, err := g.chain("no route", ep.HTTP.Middlewares)
	if err != nil {
		return nil, fmt.Errorf("entrypoint %q: %w", ep.Name, err)
	}
	return g.tracker(trackKey{k, ""}, fp, func() http.Handler { return middleware.Chain(mws...)(l7.NoRoute) }), nil
}

// httpTracker is the route's service wrapped in the entrypoint's
// middlewares, then the route's own, folded once; the previous
// generation's tracker when nothing it is made of changed.
func (g *generation) httpTracker(ep *config.Entrypoint, k listenerKey, r *config.HTTPRoute) (*reqTracker, error) {
	names := append(append([]string(nil), ep.HTTP.Middlewares...), r.Middlewares...)
	svc := g.services[r.Service]
	mws, fp, err := g.chain(fmt.Sprintf("%s|%p", g.routeFPs["http_route "+r.Name], svc), names)
	if err != nil {
		return nil, fmt.Errorf("http_route %q: %w", r.Name, err)
	}
	return g.tracker(trackKey{k, r.Name}, fp, func() http.Handler {
		if len(mws) == 0 {
			return svc.handler
		}
		return middleware.Chain(mws...)(svc.handler)
	}), nil
}

// chain resolves middleware names, and extends the fingerprint fp with
// each one's identity.
func (g *generation) chain(fp string, names []string) ([]middleware.Middleware, string, error) {
	mws := make([]middleware.Middleware, len(names))
	for i, name := range names {
		m, err := g.middleware(name)
		if err != nil {
			return nil, "", err
		}
		mws[i] = m.mw
		fp += fmt.Sprintf("|%p", m)
	}
	return mws, fp, nil
}

// tracker is the previous generation's tracker at key when its
// fingerprint is fp, else a new one over the handler build makes.
func (g *generation) tracker(key trackKey, fp string, build func() http.Handler) *reqTracker {
	if t := g.prev.httpTrack[key]; t != nil && t.fp == fp {
		g.httpTrack[key] = t
		return t
	}
	t := newReqTracker(build(), fp)
	g.httpTrack[key] = t
	return t
}
