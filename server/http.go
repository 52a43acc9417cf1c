package server

import (
	"context"
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

// handoff is the l4.Handler that gives connections to the HTTP server and
// holds them in l4's books (max_connections, drain on shutdown) until the
// HTTP server closes them.
type handoff struct{ ln *connListener }

var _ l4.Handler = handoff{}

func (h handoff) ServeTCP(ctx context.Context, c *l4.Conn) {
	var conn net.Conn = c
	if c.Stream != nil {
		conn = c.Stream
	}
	select {
	case h.ln.conns <- conn:
	case <-h.ln.done:
		c.Close()
		return
	case <-ctx.Done():
		c.Close()
		return
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		conn.Close()
	}
}

// httpEntry is the HTTP side of an entrypoint.
type httpEntry struct {
	ln  *connListener
	srv *l7.Server
}

// buildHTTP makes the HTTP server of an entrypoint with http_routes.
func (s *Server) buildHTTP(ep *config.Entrypoint, routes []*config.HTTPRoute) (*httpEntry, error) {
	var rs []*l7.Route
	for _, r := range routes {
		h, err := s.routeHandler(ep, r)
		if err != nil {
			return nil, err
		}
		_, proxied := s.services[r.Service].(*l7.Proxy)
		rs = append(rs, &l7.Route{Config: r, Handler: h, Upgrades: proxied})
	}
	router, err := l7.NewRouter(rs)
	if err != nil {
		return nil, err
	}
	for _, w := range router.Warnings() {
		s.log.Warn("http routes", "entrypoint", ep.Name, "warning", w)
	}
	h := &httpEntry{ln: newConnListener()}
	h.srv = l7.NewServer(l7.ServerOptions{
		Entrypoint:           ep.Name,
		Handler:              s.acmeHandler(l7.NewEntry(ep.Name, router, ep.HTTP.TrustedProxies, s.log)),
		ReadHeaderTimeout:    ep.Timeouts.ReadHeader,
		IdleTimeout:          ep.Timeouts.Idle,
		WriteTimeout:         ep.HTTP.WriteTimeout,
		MaxHeaderBytes:       ep.HTTP.MaxHeaderBytes,
		MaxConcurrentStreams: ep.HTTP.MaxConcurrentStreams,
		Logger:               s.log,
	})
	return h, nil
}

// routeHandler is the route's service wrapped in the entrypoint's
// middlewares, then the route's own, folded once here.
func (s *Server) routeHandler(ep *config.Entrypoint, r *config.HTTPRoute) (http.Handler, error) {
	names := append(append([]string(nil), ep.HTTP.Middlewares...), r.Middlewares...)
	if len(names) == 0 {
		return s.services[r.Service], nil
	}
	mws := make([]middleware.Middleware, len(names))
	for i, name := range names {
		mw, err := s.middleware(name)
		if err != nil {
			return nil, fmt.Errorf("http_route %q: %w", r.Name, err)
		}
		mws[i] = mw
	}
	return middleware.Chain(mws...)(s.services[r.Service]), nil
}

// middleware builds a named middleware once and shares it among routes, so
// that state such as a rate limit's buckets is per middleware, not per
// route.
func (s *Server) middleware(name string) (middleware.Middleware, error) {
	if mw, ok := s.mws[name]; ok {
		return mw, nil
	}
	for i := range s.cfg.Middlewares {
		if m := &s.cfg.Middlewares[i]; m.Name == name {
			mw, err := middleware.Build(m, middleware.Env{
				ClientIP: l7.ClientIP,
				Service:  func(n string) http.Handler { return s.services[n] },
				Logger:   s.log,
			})
			if err != nil {
				return nil, err
			}
			s.mws[name] = mw
			return mw, nil
		}
	}
	return nil, fmt.Errorf("unknown middleware %q", name)
}

func (s *Server) httpRoutes(ep string) []*config.HTTPRoute {
	var out []*config.HTTPRoute
	for i := range s.cfg.HTTPRoutes {
		for _, name := range s.cfg.HTTPRoutes[i].Entrypoints {
			if name == ep {
				out = append(out, &s.cfg.HTTPRoutes[i])
			}
		}
	}
	return out
}
