package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/proxynow/proxynow/quic"
	"github.com/proxynow/proxynow/tlsmux"
	"github.com/proxynow/proxynow/tlsmux/acme"
	"github.com/proxynow/proxynow/upstream"
)

// generation is one configuration compiled: pools, service handlers,
// middlewares, certificates and, per entrypoint, what its listener does.
// Everything a reload leaves unchanged is taken over from the previous
// generation as the same object (so a pool keeps its health and breaker
// state and its idle connections); the rest is built afresh. A generation
// is immutable once published.
type generation struct {
	s    *Server
	cfg  *config.Config
	prev *generation // only while compiling; nil afterwards

	services  map[string]*serviceEntry
	mws       map[string]*mwEntry
	certs     *tlsmux.CertStore // nil without certificates
	acme      *acme.Manager     // nil without acme blocks (acme.go)
	eps       []*epPlan
	tcpTrack  map[trackKey]*connTracker
	httpTrack map[trackKey]*reqTracker
	// routeFPs is what each route is ("http_route NAME" -> its definition
	// without position and entrypoints), computed once per generation.
	routeFPs map[string]string
	// warned is, per HTTP listener, a hash of the routes whose shadowing
	// warnings were logged.
	warned map[listenerKey]string
	// warnings are the configuration's and the shadowed routes' found
	// compiling it, logged together, in file order, when compile ends.
	warnings config.Diagnostics
}

// serviceEntry is one service's runtime: its pool (nil for respond) and
// HTTP handler (nil for L4-only services).
type serviceEntry struct {
	fp      string
	pool    *upstream.Pool
	handler http.Handler
	proxy   *l7.Proxy
}

// mwEntry is a built middleware and what must be released with it.
type mwEntry struct {
	fp      string
	mw      middleware.Middleware
	closers []io.Closer
}

// epPlan is what one entrypoint's listener does in a generation.
type epPlan struct {
	cfg *config.Entrypoint
	key listenerKey
	ln  *listener // set before the handlers are built; bound by the time of the swap

	tcp  l4.TCPLive
	http http.Handler // the entry handler; nil without http_routes
	hs   *httpServer  // the HTTP server it runs on (maybe the previous generation's)
	udp  l4.UDPLive
	// quic is the HTTP/3 side (nil without http3), quicRoutes its
	// quic_routes.
	quic       *quicSide
	quicRoutes []quic.PassRoute
}

type trackKey struct {
	ln    listenerKey
	route string
}

// emptyGeneration is the previous generation of the first one.
func emptyGeneration() *generation {
	return &generation{services: map[string]*serviceEntry{}, mws: map[string]*mwEntry{},
		tcpTrack: map[trackKey]*connTracker{}, httpTrack: map[trackKey]*reqTracker{}}
}

// compile builds cfg's generation on top of prev. listeners are the
// sockets the server holds now; an entrypoint whose key is among them
// reuses that listener, the others get a new, unbound one.
func compile(s *Server, cfg *config.Config, prev *generation, listeners map[listenerKey]*listener) (*generation, error) {
	g := &generation{s: s, cfg: cfg, prev: prev, services: map[string]*serviceEntry{}, mws: map[string]*mwEntry{},
		tcpTrack: map[trackKey]*connTracker{}, httpTrack: map[trackKey]*reqTracker{}, warned: map[listenerKey]string{},
		warnings: slices.Clone(cfg.Warnings)}
	defer func() { g.prev = nil }()
	defer g.logWarnings()
	g.fingerprintRoutes()
	for i := range cfg.Services {
		if err := g.service(&cfg.Services[i]); err != nil {
			return nil, err
		}
	}
	if err := g.certificates(); err != nil {
		return nil, err
	}
	if err := g.setupACME(); err != nil {
		return nil, err
	}
	for i := range cfg.Entrypoints {
		ep := &cfg.Entrypoints[i]
		p := &epPlan{cfg: ep, key: keyOf(ep)}
		if p.ln = listeners[p.key]; p.ln == nil {
			p.ln = newListener(p.key, ep, s)
		}
		if err := g.build(p); err != nil {
			return nil, fmt.Errorf("entrypoint %q: %w", ep.Name, err)
		}
		g.eps = append(g.eps, p)
	}
	return g, nil
}

// logWarnings logs the warnings compile gathered, sorted by file, line and
// column as `proxynow validate` prints them: a shadowed route's warning
// among the configuration's own, not after them.
func (g *generation) logWarnings() {
	g.warnings.SortByPos()
	for _, w := range g.warnings {
		g.s.log.Warn("configuration", "warning", w.Error())
	}
	g.warnings = nil
}

// service builds (or takes over) a service's pool and handler.
func (g *generation) service(svc *config.Service) error {
	fp, err := serviceFingerprint(svc)
	if err != nil {
		return err
	}
	if old := g.prev.services[svc.Name]; old != nil && old.fp == fp {
		g.services[svc.Name] = old
		return nil
	}
	e := &serviceEntry{fp: fp}
	if svc.Respond != nil {
		e.handler = l7.NewRespond(svc.Respond)
		g.services[svc.Name] = e
		return nil
	}
	if e.pool, err = upstream.NewPool(svc, upstream.Options{Logger: g.s.log}); err != nil {
		return err
	}
	if isHTTP(svc) {
		e.proxy = l7.NewProxy(svc, e.pool, g.s.log)
		e.proxy.CountRetries(g.s.metrics.HTTP)
		e.handler = e.proxy
	}
	g.services[svc.Name] = e
	return nil
}

// serviceFingerprint is what a service is: its definition without
// positions, and the content of the CA bundle it names (a reload re-reads
// it, and a pool built with other roots is another pool).
func serviceFingerprint(svc *config.Service) (string, error) {
	b, err := json.Marshal(svc)
	if err != nil {
		return "", err
	}
	if svc.TLS != nil && svc.TLS.CAFile != "" {
		ca, err := os.ReadFile(svc.TLS.CAFile)
		if err != nil {
			return "", fmt.Errorf("service %q: tls: ca_file: %w", svc.Name, err)
		}
		sum := sha256.Sum256(ca)
		b = append(b, hex.EncodeToString(sum[:])...)
	}
	return string(b), nil
}

func (g *generation) fingerprintRoutes() {
	c := g.cfg
	g.routeFPs = make(map[string]string, len(c.TCPRoutes)+len(c.UDPRoutes)+len(c.HTTPRoutes))
	for _, r := range c.TCPRoutes {
		g.routeFPs["tcp_route "+r.Name] = routeFingerprint(r)
	}
	for _, r := range c.UDPRoutes {
		g.routeFPs["udp_route "+r.Name] = routeFingerprint(r)
	}
	for _, r := range c.HTTPRoutes {
		g.routeFPs["http_route "+r.Name] = routeFingerprint(r)
	}
}

func routeFingerprint[R config.TCPRoute | config.UDPRoute | config.HTTPRoute](r R) string {
	// Which entrypoints a route is on is the tracker's key, not what the
	// route is; positions move when unrelated lines are edited.
	switch r := any(&r).(type) {
	case *config.TCPRoute:
		r.Entrypoints = nil
	case *config.UDPRoute:
		r.Entrypoints = nil
	case *config.HTTPRoute:
		r.Entrypoints = nil
	}
	b, _ := json.Marshal(r) // plain data: cannot fail
	// The digest, not the JSON: it is compared only, and 10,000 routes'
	// JSON held 3 MB, twice (trackers' fingerprints start with it).
	sum := sha256.Sum256(b)
	return string(sum[:])
}

// certificates keeps the certificate store when the pairs it serves are
// the same files, re-reading those that changed; else it loads a new one.
func (g *generation) certificates() error {
	var srcs []tlsmux.CertSource
	for _, c := range g.cfg.TLS.Certificates {
		srcs = append(srcs, tlsmux.CertSource{Name: c.Name, CertFile: c.CertFile, KeyFile: c.KeyFile, Default: c.Default})
	}
	if len(srcs) == 0 && len(g.cfg.TLS.ACME) == 0 {
		return nil
	}
	if old := g.prev.certs; old != nil && slices.Equal(old.Sources(), srcs) {
		old.Reload()
		g.certs = old
		return nil
	}
	certs, err := tlsmux.NewCertStore(srcs, g.s.log)
	if err != nil {
		return err
	}
	g.certs = certs
	return nil
}

// middleware builds a named middleware once per generation and shares it
// among routes, so that state such as a rate limit's buckets is per
// middleware, not per route; an unchanged middleware is taken over from
// the previous generation, buckets and idle connections included.
func (g *generation) middleware(name string) (*mwEntry, error) {
	if m, ok := g.mws[name]; ok {
		return m, nil
	}
	i := slices.IndexFunc(g.cfg.Middlewares, func(m config.Middleware) bool { return m.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("unknown middleware %q", name)
	}
	m := &g.cfg.Middlewares[i]
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	fp := string(b)
	if ep := m.ErrorPages; ep != nil {
		fp += fmt.Sprintf("|%p", g.services[ep.Service]) // it serves pages from that service
	}
	if old := g.prev.mws[name]; old != nil && old.fp == fp {
		g.mws[name] = old
		return old, nil
	}
	e := &mwEntry{fp: fp}
	services := g.services
	e.mw, err = middleware.Build(m, middleware.Env{
		ClientIP:         l7.ClientIP,
		ForwardedTrusted: l7.ForwardedTrusted,
		Service: func(n string) http.Handler {
			if s := services[n]; s != nil {
				return s.handler
			}
			return nil
		},
		Logger:    g.s.log,
		AddCloser: func(c io.Closer) { e.closers = append(e.closers, c) },
		OnRefuse:  g.s.metrics.HTTP.RateLimited(name).Inc,
	})
	if err != nil {
		return nil, err
	}
	g.mws[name] = e
	return e, nil
}

// build fills in what p's listener does.
func (g *generation) build(p *epPlan) error {
	ep := p.cfg
	if p.key.network == config.NetworkUDP {
		p.udp = l4.UDPLive{MaxFlows: ep.MaxFlows}
		if r := g.udpRoute(ep.Name); r != nil {
			svc := g.cfg.Service(r.Service)
			p.udp.Route = r.Name
			p.udp.Pool = g.services[svc.Name].pool
			p.udp.IdleTimeout = r.IdleTimeout
			p.udp.ProxyProtocol = svc.ProxyProtocol == "v2"
			p.udp.Service = svc.Name
			p.udp.Metrics = g.s.metrics.L4.UDP(ep.Name, r.Name, svc.Name)
		}
		return nil
	}
	p.tcp = l4.TCPLive{MaxConnections: ep.MaxConnections}
	if pp := ep.ProxyProtocol; pp != nil {
		p.tcp.ProxyProtocol = &l4.ProxyProtocolIn{Trusted: pp.Trusted, Timeout: pp.Timeout}
	}
	routes := g.tcpRoutes(ep.Name)
	if hr := g.httpRoutes(ep.Name); len(hr) > 0 {
		h, err := g.buildHTTP(ep, p.key, hr)
		if err != nil {
			return err
		}
		p.http = h
		if err := g.buildQUIC(p); err != nil {
			return err
		}
		if old := p.ln.http.Load(); old != nil && old.settings == settingsOf(ep) {
			p.hs = old
		} else {
			p.hs = newHTTPServer(ep, g.s)
		}
		if len(routes) == 0 && g.certs == nil {
			p.tcp.Handler = handoff{p.ln}
			return nil
		}
		// Peek: TLS routes first, then TLS for HTTP (terminated with the
		// certificates, ALPN h2 or http/1.1), plaintext to HTTP.
		mux, err := g.mux(p, routes, true)
		if err != nil {
			return err
		}
		p.tcp.Handler = mux
		return nil
	}
	switch {
	case len(routes) == 0:
		name := ep.Name
		p.tcp.Handler = l4.HandlerFunc(func(_ context.Context, c *l4.Conn) {
			g.s.log.Debug("connection closed: no route", "entrypoint", name, "client", c.Client)
			c.Close()
		})
	case len(routes) == 1 && routes[0].TLS == config.TLSNone:
		// A plain catch-all: no peeking, so server-first protocols work.
		p.tcp.Handler = g.tcpTracker(p, routes[0])
	default:
		mux, err := g.mux(p, routes, false)
		if err != nil {
			return err
		}
		p.tcp.Handler = mux
	}
	return nil
}

// isHTTP reports whether a service speaks HTTP to its backends.
func isHTTP(svc *config.Service) bool {
	for _, b := range svc.Backends {
		switch b.Scheme {
		case config.SchemeHTTP, config.SchemeHTTPS, config.SchemeH2C, config.SchemeH3:
			return true
		}
	}
	return false
}

// tcpTracker is the tracked proxy of a tcp_route on p's listener: the
// previous generation's when the route, its service and the entrypoint's
// idle timeout are unchanged, so its connections are not touched.
func (g *generation) tcpTracker(p *epPlan, r *config.TCPRoute) *connTracker {
	svc := g.services[r.Service]
	fp := fmt.Sprintf("%s|%p|%d", g.routeFPs["tcp_route "+r.Name], svc, p.cfg.Timeouts.Idle)
	key := trackKey{p.key, r.Name}
	if t := g.prev.tcpTrack[key]; t != nil && t.fp == fp {
		g.tcpTrack[key] = t
		return t
	}
	t := newConnTracker(&l4.Proxy{
		Route:         r.Name,
		Pool:          svc.pool,
		ProxyProtocol: g.cfg.Service(r.Service).ProxyProtocol,
		Idle:          p.cfg.Timeouts.Idle,
		Logger:        g.s.log,
		Service:       r.Service,
		Metrics:       g.s.metrics.L4.Route(p.cfg.Name, r.Name, r.Service),
		AccessLog:     &g.s.accessLog,
	}, fp)
	g.tcpTrack[key] = t
	return t
}

var tlsModes = map[string]tlsmux.Mode{
	config.TLSNone:        tlsmux.Plain,
	config.TLSPassthrough: tlsmux.Passthrough,
	config.TLSTerminate:   tlsmux.Terminate,
}

var tlsVersions = map[string]uint16{config.TLSVersion12: tls.VersionTLS12, config.TLSVersion13: tls.VersionTLS13}

func (g *generation) mux(p *epPlan, routes []*config.TCPRoute, withHTTP bool) (*tlsmux.Mux, error) {
	o := tlsmux.Options{
		Entrypoint:       p.cfg.Name,
		Certs:            g.certs,
		MinVersion:       tlsVersions[g.cfg.TLS.MinVersion],
		HandshakeTimeout: p.cfg.Timeouts.Handshake,
		Logger:           g.s.log,
		Metrics:          g.s.metrics.TLS,
		Challenges:       g.acmeChallenges(),
	}
	for _, r := range routes {
		o.Routes = append(o.Routes, tlsmux.Route{
			Name:    r.Name,
			SNI:     r.SNI,
			ALPN:    r.ALPN,
			Mode:    tlsModes[r.TLS],
			Handler: g.tcpTracker(p, r),
		})
	}
	if withHTTP {
		o.Routes = append(o.Routes, tlsmux.Route{Name: "http", Mode: tlsmux.Plain, Handler: handoff{p.ln}})
		if g.certs != nil {
			o.Fallback = handoff{p.ln}
			o.FallbackALPN = []string{"h2", "http/1.1"}
		}
	}
	return tlsmux.New(o)
}

// routesOn returns the routes of rs that name entrypoint ep.
func routesOn[R any](rs []R, ep string, eps func(*R) []string) []*R {
	var out []*R
	for i := range rs {
		if slices.Contains(eps(&rs[i]), ep) {
			out = append(out, &rs[i])
		}
	}
	return out
}

func (g *generation) tcpRoutes(ep string) []*config.TCPRoute {
	return routesOn(g.cfg.TCPRoutes, ep, func(r *config.TCPRoute) []string { return r.Entrypoints })
}

func (g *generation) httpRoutes(ep string) []*config.HTTPRoute {
	return routesOn(g.cfg.HTTPRoutes, ep, func(r *config.HTTPRoute) []string { return r.Entrypoints })
}

// udpRoute is the entrypoint's udp_route (validation allows one), or nil.
func (g *generation) udpRoute(ep string) *config.UDPRoute {
	if rs := routesOn(g.cfg.UDPRoutes, ep, func(r *config.UDPRoute) []string { return r.Entrypoints }); len(rs) > 0 {
		return rs[0]
	}
	return nil
}
