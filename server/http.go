package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
)

// httpParkAfter is how long a plaintext HTTP/1.1 connection waits for its
// next request inside net/http before handoff takes it back (l7's
// ServerOptions.ParkIdleAfter): a parked connection costs one small
// goroutine instead of net/http's goroutine and 8 KiB of buffers (10,000
// idle connections: 8.5 KiB each instead of 26). Handing it to net/http
// again costs a few microseconds, nothing next to the 100ms the client
// stayed silent; a client that keeps a connection busy never parks.
var httpParkAfter = 100 * time.Millisecond // a var for the tests

// handoff is the l4.Handler that gives connections to the listener's HTTP
// server. It detaches them: l4 keeps them on its books (max_connections,
// drain on shutdown) until the HTTP server closes them, with no goroutine
// of its own waiting meanwhile. A plaintext connection the HTTP server
// parks (l7.IdleParker) waits for its next request in a goroutine of its
// own, then goes to the HTTP server in place then, which after a reload may
// be another one.
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

// awaitRequest waits for the first byte of a parked connection's next
// request until its idle deadline, then hands it to the HTTP server again;
// it closes the connection instead on idle timeout, when the client goes,
// or when the listener shuts down.
func (h handoff) awaitRequest(p *parkable, dl time.Time) {
	c := p.Conn
	if !h.l.parked.add(c) {
		c.Close()
		return
	}
	ok := c.TCPConn.SetReadDeadline(dl) == nil
	if ok {
		n, _ := c.TCPConn.Read(p.first[:])
		ok = n == 1 && c.TCPConn.SetReadDeadline(time.Time{}) == nil
	}
	h.l.parked.remove(c)
	if !ok {
		c.Close()
		return
	}
	c.Prefix = p.first[:1]
	h.hand(p.ctx, c, &parkable{Conn: c, ctx: p.ctx, h: h, resumed: true})
}

// parkable is a plaintext connection as handoff gives it to the HTTP
// server: l7's guard parks it through Park instead of closing it.
type parkable struct {
	*l4.Conn
	ctx     context.Context // the l4 server's
	h       handoff
	resumed bool
	first   [1]byte // the byte that woke the connection
}

var _ l7.IdleParker = (*parkable)(nil)

// Park is called by the guard once, on the goroutine net/http is ending.
func (p *parkable) Park(deadline time.Time) { go p.h.awaitRequest(p, deadline) }

func (p *parkable) Resumed() bool { return p.resumed }

// parkedConns are a listener's parked connections, closed at once when the
// listener shuts down (as net/http closes its idle ones).
type parkedConns struct {
	mu     sync.Mutex
	conns  map[*l4.Conn]struct{}
	closed bool
}

// add registers c; false once closeAll has run.
func (s *parkedConns) add(c *l4.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*l4.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *parkedConns) remove(c *l4.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeAll closes the parked connections and every one parked later.
func (s *parkedConns) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
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
		for _, w := range router.Warnings() {
			g.s.log.Warn("http routes", "entrypoint", ep.Name, "warning", w)
		}
	}
	entry := g.acmeHandler(l7.NewEntry(ep.Name, router, ep.HTTP.TrustedProxies, g.s.log))
	return l7.NewObserver(entry, ep.Name, routes, g.s.metrics.HTTP, g.s.accessLog), nil
}

// httpTracker is the route's service wrapped in the entrypoint's
// middlewares, then the route's own, folded once; the previous
// generation's tracker when nothing it is made of changed.
func (g *generation) httpTracker(ep *config.Entrypoint, k listenerKey, r *config.HTTPRoute) (*reqTracker, error) {
	names := append(append([]string(nil), ep.HTTP.Middlewares...), r.Middlewares...)
	svc := g.services[r.Service]
	mws := make([]middleware.Middleware, len(names))
	fp := fmt.Sprintf("%s|%p", g.routeFPs["http_route "+r.Name], svc)
	for i, name := range names {
		m, err := g.middleware(name)
		if err != nil {
			return nil, fmt.Errorf("http_route %q: %w", r.Name, err)
		}
		mws[i] = m.mw
		fp += fmt.Sprintf("|%p", m)
	}
	key := trackKey{k, r.Name}
	if t := g.prev.httpTrack[key]; t != nil && t.fp == fp {
		g.httpTrack[key] = t
		return t, nil
	}
	h := svc.handler
	if len(mws) > 0 {
		h = middleware.Chain(mws...)(h)
	}
	t := newReqTracker(h, fp)
	g.httpTrack[key] = t
	return t, nil
}
