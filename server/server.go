package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/proxynow/proxynow/tlsmux"
	"github.com/proxynow/proxynow/tlsmux/acme"
	"github.com/proxynow/proxynow/upstream"
)

// Server runs one configuration.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	pools map[string]*upstream.Pool
	certs *tlsmux.CertStore // nil without certificates
	acme  *acme.Manager     // nil without acme blocks
	// services are the handlers of HTTP services, shared by every route.
	services map[string]http.Handler
	proxies  []*l7.Proxy
	mws      map[string]middleware.Middleware // built once per name
	eps      []*entrypoint
	wg       sync.WaitGroup
}

// certPoll is how often certificate files are checked for changes.
const certPoll = 2 * time.Second

// entrypoint is one listener and the l4 server behind it.
type entrypoint struct {
	cfg  *config.Entrypoint
	tcp  *l4.TCPServer
	udp  *l4.UDPServer
	http *httpEntry // nil without http_routes
	addr net.Addr   // bound address, set by Start
}

// New compiles cfg into servers and pools and loads certificates; it binds
// nothing. Errors are about files the configuration names (they loaded when
// it was validated, but may have changed since).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, pools: make(map[string]*upstream.Pool), services: make(map[string]http.Handler),
		mws: make(map[string]middleware.Middleware)}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if svc.Respond != nil {
			s.services[svc.Name] = l7.NewRespond(svc.Respond)
			continue
		}
		p, err := upstream.NewPool(svc, upstream.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		s.pools[svc.Name] = p
		if isHTTP(svc) {
			px := l7.NewProxy(svc, p, log)
			s.services[svc.Name] = px
			s.proxies = append(s.proxies, px)
		}
	}
	if len(cfg.TLS.Certificates) > 0 {
		var srcs []tlsmux.CertSource
		for _, c := range cfg.TLS.Certificates {
			srcs = append(srcs, tlsmux.CertSource{Name: c.Name, CertFile: c.CertFile, KeyFile: c.KeyFile, Default: c.Default})
		}
		certs, err := tlsmux.NewCertStore(srcs, log)
		if err != nil {
			return nil, err
		}
		s.certs = certs
	}
	if err := s.setupACME(); err != nil {
		return nil, err
	}
	for i := range cfg.Entrypoints {
		e, err := s.build(&cfg.Entrypoints[i])
		if err != nil {
			return nil, fmt.Errorf("entrypoint %q: %w", cfg.Entrypoints[i].Name, err)
		}
		s.eps = append(s.eps, e)
	}
	return s, nil
}

func (s *Server) build(ep *config.Entrypoint) (*entrypoint, error) {
	e := &entrypoint{cfg: ep}
	if ep.Network == config.NetworkUDP {
		e.udp = &l4.UDPServer{Entrypoint: ep.Name, MaxFlows: ep.MaxFlows, Logger: s.log}
		if r := s.udpRoute(ep.Name); r != nil {
			svc := s.cfg.Service(r.Service)
			e.udp.Route = r.Name
			e.udp.Pool = s.pools[svc.Name]
			e.udp.IdleTimeout = r.IdleTimeout
			e.udp.ProxyProtocol = svc.ProxyProtocol == "v2"
		}
		return e, nil
	}
	e.tcp = &l4.TCPServer{Entrypoint: ep.Name, MaxConnections: ep.MaxConnections, Logger: s.log}
	if pp := ep.ProxyProtocol; pp != nil {
		e.tcp.ProxyProtocol = &l4.ProxyProtocolIn{Trusted: pp.Trusted, Timeout: pp.Timeout}
	}
	routes := s.tcpRoutes(ep.Name)
	if hr := s.httpRoutes(ep.Name); len(hr) > 0 {
		h, err := s.buildHTTP(ep, hr)
		if err != nil {
			return nil, err
		}
		e.http = h
		if len(routes) == 0 && s.certs == nil {
			e.tcp.Handler = handoff{h.ln}
			return e, nil
		}
		// Peek: TLS routes first, then TLS for HTTP (terminated with the
		// certificates, ALPN h2 or http/1.1), plaintext to HTTP.
		mux, err := s.mux(ep, routes, h)
		if err != nil {
			return nil, err
		}
		e.tcp.Handler = mux
		return e, nil
	}
	switch {
	case len(routes) == 0:
		e.tcp.Handler = l4.HandlerFunc(func(_ context.Context, c *l4.Conn) {
			s.log.Debug("connection closed: no route", "entrypoint", ep.Name, "client", c.Client)
			c.Close()
		})
	case len(routes) == 1 && routes[0].TLS == config.TLSNone:
		// A plain catch-all: no peeking, so server-first protocols work.
		e.tcp.Handler = s.proxy(ep, routes[0])
	default:
		mux, err := s.mux(ep, routes, nil)
		if err != nil {
			return nil, err
		}
		e.tcp.Handler = mux
	}
	return e, nil
}

// isHTTP reports whether a service speaks HTTP to its backends.
func isHTTP(svc *config.Service) bool {
	for _, b := range svc.Backends {
		switch b.Scheme {
		case config.SchemeHTTP, config.SchemeHTTPS, config.SchemeH2C:
			return true
		}
	}
	return false
}

func (s *Server) proxy(ep *config.Entrypoint, r *config.TCPRoute) *l4.Proxy {
	svc := s.cfg.Service(r.Service)
	return &l4.Proxy{
		Route:         r.Name,
		Pool:          s.pools[svc.Name],
		ProxyProtocol: svc.ProxyProtocol,
		Idle:          ep.Timeouts.Idle,
		Logger:        s.log,
	}
}

var tlsModes = map[string]tlsmux.Mode{
	config.TLSNone:        tlsmux.Plain,
	config.TLSPassthrough: tlsmux.Passthrough,
	config.TLSTerminate:   tlsmux.Terminate,
}

var tlsVersions = map[string]uint16{config.TLSVersion12: tls.VersionTLS12, config.TLSVersion13: tls.VersionTLS13}

func (s *Server) mux(ep *config.Entrypoint, routes []*config.TCPRoute, h *httpEntry) (*tlsmux.Mux, error) {
	o := tlsmux.Options{
		Entrypoint:       ep.Name,
		Certs:            s.certs,
		MinVersion:       tlsVersions[s.cfg.TLS.MinVersion],
		HandshakeTimeout: ep.Timeouts.Handshake,
		Challenges:       s.acmeChallenges(),
		Logger:           s.log,
	}
	for _, r := range routes {
		o.Routes = append(o.Routes, tlsmux.Route{
			Name:    r.Name,
			SNI:     r.SNI,
			ALPN:    r.ALPN,
			Mode:    tlsModes[r.TLS],
			Handler: s.proxy(ep, r),
		})
	}
	if h != nil {
		o.Routes = append(o.Routes, tlsmux.Route{Name: "http", Mode: tlsmux.Plain, Handler: handoff{h.ln}})
		if s.certs != nil {
			o.Fallback = handoff{h.ln}
			o.FallbackALPN = []string{"h2", "http/1.1"}
		}
	}
	return tlsmux.New(o)
}

func (s *Server) tcpRoutes(ep string) []*config.TCPRoute {
	var out []*config.TCPRoute
	for i := range s.cfg.TCPRoutes {
		for _, name := range s.cfg.TCPRoutes[i].Entrypoints {
			if name == ep {
				out = append(out, &s.cfg.TCPRoutes[i])
			}
		}
	}
	return out
}

func (s *Server) udpRoute(ep string) *config.UDPRoute {
	for i := range s.cfg.UDPRoutes {
		for _, name := range s.cfg.UDPRoutes[i].Entrypoints {
			if name == ep {
				return &s.cfg.UDPRoutes[i]
			}
		}
	}
	return nil
}

// Start binds every entrypoint and starts serving. If one cannot be bound,
// the ones already bound are closed and the error names the entrypoint.
func (s *Server) Start() error {
	if s.certs != nil {
		s.certs.Watch(certPoll)
	}
	for _, p := range s.pools {
		p.StartHealthChecks()
	}
	lc := net.ListenConfig{KeepAliveConfig: clientKeepAlive}
	for i, e := range s.eps {
		var err error
		switch {
		case e.udp != nil:
			var pc net.PacketConn
			if pc, err = lc.ListenPacket(context.Background(), "udp", e.cfg.Address); err == nil {
				e.addr = pc.LocalAddr()
				s.serve(e, func() error { return e.udp.Serve(pc.(*net.UDPConn)) })
			}
		default:
			var ln net.Listener
			if ln, err = lc.Listen(context.Background(), "tcp", e.cfg.Address); err == nil {
				e.addr = ln.Addr()
				if e.http != nil {
					e.http.ln.addr = e.addr
					s.serve(e, func() error { return e.http.srv.Serve(e.http.ln) })
				}
				s.serve(e, func() error { return e.tcp.Serve(ln.(*net.TCPListener)) })
			}
		}
		if err != nil {
			for _, done := range s.eps[:i] {
				done.close()
			}
			s.wg.Wait()
			s.stopBackground()
			return fmt.Errorf("entrypoint %q: %w", e.cfg.Name, err)
		}
		s.log.Info("listening", "entrypoint", e.cfg.Name, "network", e.network(), "address", e.addr.String())
	}
	s.startACME()
	return nil
}

// clientKeepAlive is the TCP keep-alive toward clients.
var clientKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4}

func (s *Server) serve(e *entrypoint, serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, l4.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("entrypoint stopped", "entrypoint", e.cfg.Name, "error", err)
		}
	}()
}

func (e *entrypoint) network() string {
	if e.udp != nil {
		return config.NetworkUDP
	}
	return config.NetworkTCP
}

func (e *entrypoint) shutdown(ctx context.Context) error {
	if e.udp != nil {
		return e.udp.Shutdown(ctx)
	}
	if e.http == nil {
		return e.tcp.Shutdown(ctx)
	}
	// The HTTP server closes idle keep-alive connections and lets requests
	// in flight finish; l4 waits for those connections to be closed.
	var httpErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		httpErr = e.http.srv.Shutdown(ctx)
	}()
	err := e.tcp.Shutdown(ctx)
	<-done
	e.http.srv.Close()
	e.http.ln.Close()
	return errors.Join(err, httpErr)
}

func (e *entrypoint) close() {
	if e.udp != nil {
		e.udp.Close()
		return
	}
	if e.http != nil {
		e.http.srv.Close()
		e.http.ln.Close()
	}
	e.tcp.Close()
}

// Addr returns the bound address of the named entrypoint, or nil.
func (s *Server) Addr(entrypoint string) net.Addr {
	for _, e := range s.eps {
		if e.cfg.Name == entrypoint {
			return e.addr
		}
	}
	return nil
}

// Pool returns the backend pool of the named service, or nil.
func (s *Server) Pool(service string) *upstream.Pool { return s.pools[service] }

// Shutdown stops accepting on every entrypoint at once and waits for open
// connections and flows until ctx is done; those left are then closed. It
// returns when every goroutine the server started has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	errs := make([]error, len(s.eps))
	var wg sync.WaitGroup
	for i, e := range s.eps {
		wg.Go(func() { errs[i] = e.shutdown(ctx) })
	}
	wg.Wait()
	s.wg.Wait()
	s.stopBackground()
	return errors.Join(errs...)
}

// stopBackground stops certificate polling and health checks and drops
// idle backend connections.
func (s *Server) stopBackground() {
	s.stopACME()
	if s.certs != nil {
		s.certs.Close()
	}
	for _, p := range s.pools {
		p.Close()
	}
	for _, px := range s.proxies {
		px.CloseIdleConnections()
	}
}

// Close closes every listener, connection and flow at once.
func (s *Server) Close() error {
	for _, e := range s.eps {
		e.close()
	}
	s.wg.Wait()
	s.stopBackground()
	return nil
}
