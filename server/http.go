package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
)

// connListener is the net.Listener an entrypoint's HTTP server accepts
// from: l4 (through tlsmux when TLS is possible) pushes connections into
// it, plaintext as the *l4.Conn and terminated TLS as the *tls.Conn, so
// net/http sees ALPN and speaks HTTP/2 when it was negotiated.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}

// handoff is the l4.Handler that gives connections to the listener's HTTP
// server and holds them in l4's books (max_connections, drain on shutdown)
// until the HTTP server closes them.
type handoff struct{ l *listener }

var _ l4.Handler = handoff{}

func (h handoff) ServeTCP(ctx context.Context, c *l4.Conn) {
	var conn net.Conn = c
	if c.Stream != nil {
		conn = c.Stream
	}
	for handed := false; !handed; {
		hs := h.l.http.Load()
		if hs == nil {
			c.Close()
			return
		}
		select {
		case hs.ln.conns <- conn:
			handed = true
		case <-hs.ln.done:
			if h.l.http.Load() == hs {
				c.Close()
				return
			}
			// A reload replaced the HTTP server while this connection was
			// on its way: the new one takes it.
		case <-ctx.Done():
			c.Close()
			return
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		conn.Close()
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
