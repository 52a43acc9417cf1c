package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults, as documented on the types.
const (
	DefaultGracePeriod          = 10 * time.Second
	DefaultLogLevel             = "info"
	DefaultLogFormat            = "text"
	DefaultProxyProtocolTimeout = 5 * time.Second
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultIdleTimeout          = 5 * time.Minute
	DefaultMaxConnections       = 10000
	DefaultMaxFlows             = 10000
	DefaultUDPIdleTimeout       = 30 * time.Second
	DefaultConnectTimeout       = 5 * time.Second
	DefaultFailTimeout          = 10 * time.Second
	DefaultWeight               = 1
	DefaultTLSMinVersion        = TLSVersion12
)

var (
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	networks      = []string{NetworkTCP, NetworkUDP}
	balancers     = []string{BalancerRoundRobin, BalancerWeighted, BalancerLeastConn, BalancerRandom, BalancerP2C, BalancerHash}
	httpBalancers = []string{BalancerP2C, BalancerHash}
	ppVersions    = []string{"v1", "v2"}
)

// applyDefaults fills every attribute that was not written. A written zero
// stays zero so that validation can reject it.
func applyDefaults(c *decls) {
	setDur := func(w where, k string, dst *time.Duration, def time.Duration) {
		if !w.has(k) {
			*dst = def
		}
	}
	setDur(c.gw, "grace_period", &c.global.GracePeriod, DefaultGracePeriod)
	if !c.lw.has("level") {
		c.log.Level = DefaultLogLevel
	}
	if !c.lw.has("format") {
		c.log.Format = DefaultLogFormat
	}
	applyAdminDefaults(c)
	for _, e := range c.entrypoints {
		if !e.w.has("network") {
			e.Network = NetworkTCP
		}
		if e.Network == NetworkTCP && !e.w.has("max_connections") {
			e.MaxConnections = DefaultMaxConnections
		}
		if e.Network == NetworkUDP && !e.w.has("max_flows") {
			e.MaxFlows = DefaultMaxFlows
		}
		if e.ProxyProtocol != nil {
			setDur(e.w, "proxy_protocol.timeout", &e.ProxyProtocol.Timeout, DefaultProxyProtocolTimeout)
		}
		setDur(e.w, "timeouts.handshake", &e.Timeouts.Handshake, DefaultHandshakeTimeout)
		setDur(e.w, "timeouts.read_header", &e.Timeouts.ReadHeader, DefaultReadHeaderTimeout)
		setDur(e.w, "timeouts.idle", &e.Timeouts.Idle, DefaultIdleTimeout)
	}
	if !c.tls.w.has("min_version") {
		c.tls.MinVersion = DefaultTLSMinVersion
	}
	for _, r := range c.tcpRoutes {
		switch {
		case r.w.has("tls"):
		case r.w.has("sni") || r.w.has("alpn"):
			r.TLS = TLSPassthrough
		default:
			r.TLS = TLSNone
		}
	}
	for _, r := range c.udpRoutes {
		setDur(r.w, "idle_timeout", &r.IdleTimeout, DefaultUDPIdleTimeout)
	}
	for _, s := range c.services {
		if s.w.has("respond") {
			continue // no backends: every backend setting stays zero
		}
		if !s.w.has("balancer") {
			s.Balancer = BalancerRoundRobin
		}
		setDur(s.w, "connect_timeout", &s.ConnectTimeout, DefaultConnectTimeout)
		setDur(s.w, "fail_timeout", &s.FailTimeout, DefaultFailTimeout)
		for _, b := range s.backends {
			if !b.w.has("weight") {
				b.Weight = DefaultWeight
			}
			if b.TLS {
				if s.TLS == nil {
					s.TLS = &BackendTLS{}
				}
				b.ServerName = backendServerName(s.TLS, b.Address)
			}
		}
	}
	applyHTTPDefaults(c)
	applyHTTP3Defaults(c)
	applyMiddlewareDefaults(c)
	applyACMEDefaults(c)
}

// validator checks decoded declarations. It is pure: no I/O, no clock
// (checkFiles does what needs them).
type validator struct {
	c     *decls
	diags Diagnostics
	eps   map[string]*epDecl
	svcs  map[string]*serviceDecl
	mws   map[string]*mwDecl
	// used names, for the unused warnings
	usedEP, usedSvc, usedMW map[string]bool
}

func (v *validator) errf(p Pos, format string, args ...any) {
	v.diags = append(v.diags, Diagnostic{Severity: SeverityError, Pos: p, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(p Pos, format string, args ...any) {
	v.diags = append(v.diags, Diagnostic{Severity: SeverityWarning, Pos: p, Message: fmt.Sprintf(format, args...)})
}

// positive reports a written duration that is not > 0 (or < 0 when zero
// is allowed).
func (v *validator) positive(ctx string, w where, key string, d time.Duration, allowZero bool) {
	if !w.ok(key) {
		return
	}
	name := key[strings.LastIndexByte(key, '.')+1:]
	switch {
	case d < 0:
		v.errf(w.pos[key], "%s: %s must not be negative, got %s", ctx, name, d)
	case d == 0 && !allowZero:
		v.errf(w.pos[key], "%s: %s must be greater than zero", ctx, name)
	}
}

func (v *validator) enum(ctx string, w where, key, val string, valid []string) {
	if w.ok(key) && !slices.Contains(valid, val) {
		v.errf(w.pos[key], "%s: unknown %s %q%s", ctx, key, val, oneOf(val, valid))
	}
}

// validate returns every error and warning in c.
func validate(c *decls) Diagnostics {
	v := &validator{
		c: c, eps: map[string]*epDecl{}, svcs: map[string]*serviceDecl{},
		usedEP: map[string]bool{}, usedSvc: map[string]bool{},
		mws: map[string]*mwDecl{}, usedMW: map[string]bool{},
	}
	for _, m := range c.middlewares {
		v.mws[m.Name] = m
	}
	v.positive("global", c.gw, "grace_period", c.global.GracePeriod, true)
	v.enum("log", c.lw, "level", c.log.Level, logLevels)
	v.enum("log", c.lw, "format", c.log.Format, logFormats)
	v.admin()
	v.entrypoints()
	v.http3Entrypoints()
	v.tls()
	v.services()
	v.middlewares()
	for _, r := range c.tcpRoutes {
		v.route("tcp_route", NetworkTCP, r)
		v.routeTLS(r)
	}
	for _, r := range c.udpRoutes {
		v.route("udp_route", NetworkUDP, r)
	}
	v.quicRoutes()
	for _, r := range c.httpRoutes {
		v.httpRoute(r)
	}
	v.acme() // after the routes: auto takes their names
	v.tcpOverlaps()
	v.httpOverlaps()
	v.udpOverlaps()
	v.udpProxyProtocol()
	for _, e := range c.entrypoints {
		if !v.usedEP[e.Name] {
			v.warnf(e.Pos, "entrypoint %q is not used by any route", e.Name)
		}
	}
	for _, s := range c.services {
		if !v.usedSvc[s.Name] {
			v.warnf(s.Pos, "service %q is not used by any route", s.Name)
		}
	}
	for _, m := range c.middlewares {
		if !v.usedMW[m.Name] {
			v.warnf(m.Pos, "middleware %q is not used by any route or entrypoint", m.Name)
		}
	}
	return v.diags
}

func (v *validator) entrypoints() {
	bound := map[string]*epDecl{}
	for _, e := range v.c.entrypoints {
		v.eps[e.Name] = e
		ctx := fmt.Sprintf("entrypoint %q", e.Name)
		v.enum(ctx, e.w, "network", e.Network, networks)
		switch {
		case !e.w.has("address"):
			v.errf(e.Pos, "%s: missing required attribute \"address\"; add address = \"host:port\", e.g. \":8080\"", ctx)
		case e.w.ok("address"):
			hp, err := parseAddress(e.Address)
			if err != nil {
				hint := ""
				if _, nerr := strconv.Atoi(e.Address); nerr == nil {
					// nginx's "listen 8080" habit: the number alone is a port.
					hint = fmt.Sprintf("; write \":%s\" (every interface) or \"127.0.0.1:%s\"", e.Address, e.Address)
				}
				v.errf(e.w.pos["address"], "%s: address %q: %v%s", ctx, e.Address, err, hint)
				break
			}
			if hp.port == 0 || !slices.Contains(networks, e.Network) {
				break // port 0 picks a free port: it never conflicts
			}
			k := hp.listenKey(e.Network)
			if prev := bound[k]; prev != nil {
				v.errf(e.w.pos["address"], "%s: address %q is already used by entrypoint %q (%s) on %s; use another port",
					ctx, e.Address, prev.Name, prev.w.at("address", prev.Pos), e.Network)
				break
			}
			bound[k] = e
		}
		if e.w.has("max_connections") && e.Network == NetworkUDP {
			v.errf(e.w.pos["max_connections"], "%s: max_connections applies to tcp entrypoints only; use max_flows on a udp entrypoint", ctx)
		} else if e.w.ok("max_connections") && e.MaxConnections <= 0 {
			v.errf(e.w.pos["max_connections"], "%s: max_connections must be greater than 0, got %d", ctx, e.MaxConnections)
		}
		if e.w.has("max_flows") && e.Network == NetworkTCP {
			v.errf(e.w.pos["max_flows"], "%s: max_flows applies to udp entrypoints only; use max_connections on a tcp entrypoint", ctx)
		} else if e.w.ok("max_flows") && e.MaxFlows <= 0 {
			v.errf(e.w.pos["max_flows"], "%s: max_flows must be greater than 0, got %d", ctx, e.MaxFlows)
		}
		if pp := e.ProxyProtocol; pp != nil {
			switch {
			case !e.w.has("proxy_protocol.trusted"):
				v.errf(e.w.pos["proxy_protocol"], "%s: proxy_protocol: missing required attribute \"trusted\"; list the CIDRs of the peers that send PROXY headers", ctx)
			case e.w.ok("proxy_protocol.trusted") && len(pp.Trusted) == 0:
				v.errf(e.w.pos["proxy_protocol.trusted"], "%s: proxy_protocol: trusted must not be empty; list the CIDRs of the peers that send PROXY headers", ctx)
			}
			v.positive(ctx+": proxy_protocol", e.w, "proxy_protocol.timeout", pp.Timeout, false)
		}
		if e.Network == NetworkUDP {
			// Read on TCP only: on a udp entrypoint they were ignored, and
			// a PROXY header arriving there went to the backend as payload.
			if e.w.has("proxy_protocol") {
				v.errf(e.w.pos["proxy_protocol"], "%s: proxy_protocol on a udp entrypoint is not supported yet (PROXY headers are read on tcp entrypoints); remove it", ctx)
			}
			for _, k := range []string{"timeouts.handshake", "timeouts.read_header", "timeouts.idle"} {
				if e.w.has(k) {
					hint := ""
					if k == "timeouts.idle" {
						hint = "; a UDP flow ends after its udp_route's idle_timeout"
					}
					v.errf(e.w.pos[k], "%s: %s applies to tcp entrypoints only%s", ctx, k, hint)
				}
			}
		}
		v.positive(ctx+": timeouts", e.w, "timeouts.handshake", e.Timeouts.Handshake, false)
		v.positive(ctx+": timeouts", e.w, "timeouts.read_header", e.Timeouts.ReadHeader, false)
		v.positive(ctx+": timeouts", e.w, "timeouts.idle", e.Timeouts.Idle, false)
		v.entrypointHTTP(ctx, e)
	}
}

func (v *validator) services() {
	for _, s := range v.c.services {
		v.svcs[s.Name] = s
		ctx := fmt.Sprintf("service %q", s.Name)
		v.enum(ctx, s.w, "balancer", s.Balancer, balancers)
		if s.ProxyProtocol != "" {
			v.enum(ctx, s.w, "proxy_protocol", s.ProxyProtocol, ppVersions)
		}
		v.positive(ctx, s.w, "connect_timeout", s.ConnectTimeout, false)
		v.positive(ctx, s.w, "fail_timeout", s.FailTimeout, false)
		if len(s.backends) == 0 && !s.w.has("backend") && !s.w.has("respond") {
			v.errf(s.Pos, "%s has no backend; add backend \"host:port\" {}, or a respond block", ctx)
		}
		seen := map[string]*backendDecl{}
		var layerOf [3]*backendDecl // the first backend of each layer
		for _, b := range s.backends {
			bctx := fmt.Sprintf("%s: backend %q", ctx, b.label)
			if b.w.ok("weight") && b.Weight <= 0 {
				v.errf(b.w.pos["weight"], "%s: weight must be greater than 0, got %d", bctx, b.Weight)
			}
			if !v.backendScheme(bctx, b) {
				continue
			}
			l := schemeLayer(b.scheme)
			if other := layerOf[layerL4+layerHTTP-l]; other != nil && layerOf[l] == nil {
				names := map[int]string{layerL4: "an L4", layerHTTP: "an HTTP"}
				v.errf(b.Pos, "%s: this is %s backend and backend %q (%s) is %s one; a service's backends are all L4 (host:port, tls://) or all HTTP (http://, https://, h2c://, h3://), so split them into two services",
					bctx, names[l], other.label, other.Pos, names[layerL4+layerHTTP-l])
			}
			if layerOf[l] == nil {
				layerOf[l] = b
			}
			hp, err := parseAddress(b.Address)
			switch {
			case err != nil && strings.Contains(b.label, "://") && strings.HasSuffix(err.Error(), "missing port in address"):
				v.errf(b.Pos, "%s: missing port; write %q (a URL's port is not inferred)", bctx, b.label+cmp.Or(urlPort[b.scheme], ":PORT"))
				continue
			case err != nil:
				v.errf(b.Pos, "%s: %v", bctx, err)
				continue
			case hp.host == "":
				v.errf(b.Pos, "%s: missing host; write host:port, e.g. \"127.0.0.1%s\"", bctx, b.Address)
				continue
			case hp.port == 0:
				v.errf(b.Pos, "%s: port 0 cannot be dialed; use the backend's port", bctx)
				continue
			}
			k := net.JoinHostPort(hp.host, strconv.Itoa(hp.port))
			if b.scheme == SchemeH3 {
				k = "udp " + k // QUIC: the same host:port as an https:// backend is another socket
			}
			if prev := seen[k]; prev != nil {
				v.errf(b.Pos, "%s: duplicate backend; first defined at %s", bctx, prev.Pos)
				continue
			}
			seen[k] = b
		}
		v.serviceTLS(ctx, s)
		v.serviceHTTP(ctx, s)
	}
}

func (v *validator) route(kind, network string, r *routeDecl) {
	ctx := fmt.Sprintf("%s %q", kind, r.Name)
	switch {
	case !r.w.has("entrypoints"):
		v.errf(r.Pos, "%s: missing required attribute \"entrypoints\"; add entrypoints = [\"NAME\"]", ctx)
	case r.w.ok("entrypoints") && len(r.Entrypoints) == 0:
		v.errf(r.w.pos["entrypoints"], "%s: entrypoints must not be empty; name at least one entrypoint", ctx)
	case r.w.ok("entrypoints"):
		names := make([]string, 0, len(v.eps))
		for _, e := range v.c.entrypoints {
			names = append(names, e.Name)
		}
		for i, name := range r.Entrypoints {
			at := r.w.at(fmt.Sprintf("entrypoints.%d", i), r.w.pos["entrypoints"])
			if slices.Index(r.Entrypoints, name) < i {
				v.errf(at, "%s: entrypoint %q is listed twice", ctx, name)
				continue
			}
			e := v.eps[name]
			if e == nil {
				v.errf(at, "%s: unknown entrypoint %q%s", ctx, name, didYouMean(name, names))
				continue
			}
			v.usedEP[name] = true
			if slices.Contains(networks, e.Network) && e.Network != network {
				v.errf(at, "%s: entrypoint %q is a %s entrypoint; %s needs one with network = %q", ctx, name, e.Network, article(kind), network)
			}
		}
	}
	switch {
	case !r.w.has("service"):
		v.errf(r.Pos, "%s: missing required attribute \"service\"; add service = \"NAME\"", ctx)
	case r.w.ok("service"):
		if v.svcs[r.Service] == nil {
			names := make([]string, 0, len(v.svcs))
			for _, s := range v.c.services {
				names = append(names, s.Name)
			}
			v.errf(r.w.pos["service"], "%s: unknown service %q%s", ctx, r.Service, didYouMean(r.Service, names))
			break
		}
		v.usedSvc[r.Service] = true
		v.routeLayer(ctx, kind, r)
	}
	if kind == "udp_route" {
		v.positive(ctx, r.w, "idle_timeout", r.IdleTimeout, false)
	}
}

// udpOverlaps reports a second udp_route on one entrypoint: a udp_route
// takes every datagram of its entrypoints, so only one could ever match.
func (v *validator) udpOverlaps() {
	owner := map[string]*routeDecl{}
	for _, r := range v.c.udpRoutes {
		if !r.w.ok("entrypoints") {
			continue
		}
		for i, name := range r.Entrypoints {
			if v.eps[name] == nil || slices.Index(r.Entrypoints, name) < i {
				continue
			}
			if prev := owner[name]; prev != nil {
				v.errf(r.w.at(fmt.Sprintf("entrypoints.%d", i), r.w.pos["entrypoints"]),
					"udp_route %q: entrypoint %q already has udp_route %q (%s); only one can match, remove one or use another entrypoint",
					r.Name, name, prev.Name, prev.Pos)
				continue
			}
			owner[name] = r
		}
	}
}

// udpProxyProtocol rejects PROXY v1 toward backends of a udp_route: v1 is
// a text line for streams and has no datagram form (v2 does).
func (v *validator) udpProxyProtocol() {
	done := map[string]bool{}
	for _, r := range v.c.udpRoutes {
		s := v.svcs[r.Service]
		if !r.w.ok("service") || s == nil || s.ProxyProtocol != "v1" || done[s.Name] {
			continue
		}
		done[s.Name] = true
		v.errf(s.w.pos["proxy_protocol"], "service %q: proxy_protocol \"v1\" has no UDP form and udp_route %q uses this service; use \"v2\"", s.Name, r.Name)
	}
}

// build copies the validated declarations into a Config.
func build(c *decls, warnings Diagnostics) *Config {
	cfg := &Config{
		Files:       slices.Clone(c.files),
		Global:      c.global,
		Log:         c.log,
		Admin:       buildAdmin(c),
		Entrypoints: []Entrypoint{},
		TLS:         TLS{MinVersion: c.tls.MinVersion, Certificates: []Certificate{}, ACME: buildACME(c)},
		TCPRoutes:   []TCPRoute{},
		HTTPRoutes:  make([]HTTPRoute, 0, len(c.httpRoutes)), // sized: large configs grow it by ×1.25 steps otherwise
		Middlewares: buildMiddlewares(c),
		UDPRoutes:   []UDPRoute{},
		QUICRoutes:  buildQUICRoutes(c),
		Services:    make([]Service, 0, len(c.services)),
		Warnings:    warnings,
	}
	for _, e := range c.entrypoints {
		ep := e.Entrypoint
		if len(ep.HTTP.Middlewares) == 0 {
			ep.HTTP.Middlewares = nil
		}
		cfg.Entrypoints = append(cfg.Entrypoints, ep)
	}
	for _, cd := range c.tls.certs {
		cfg.TLS.Certificates = append(cfg.TLS.Certificates, cd.Certificate)
	}
	for _, r := range c.tcpRoutes {
		cfg.TCPRoutes = append(cfg.TCPRoutes, TCPRoute{
			Name: r.Name, Entrypoints: r.Entrypoints, SNI: r.SNI, ALPN: r.ALPN, TLS: r.TLS, Service: r.Service, Pos: r.Pos,
		})
	}
	for _, r := range c.udpRoutes {
		cfg.UDPRoutes = append(cfg.UDPRoutes, UDPRoute{Name: r.Name, Entrypoints: r.Entrypoints, Service: r.Service, IdleTimeout: r.IdleTimeout, Pos: r.Pos})
	}
	for _, r := range c.httpRoutes {
		cfg.HTTPRoutes = append(cfg.HTTPRoutes, buildHTTPRoute(r))
	}
	for _, s := range c.services {
		svc := s.Service
		if svc.Balancer != BalancerHash {
			svc.HTTP.HashKey = "" // warned about
		}
		svc.Backends = make([]Backend, 0, len(s.backends))
		for _, b := range s.backends {
			svc.Backends = append(svc.Backends, b.Backend)
		}
		cfg.Services = append(cfg.Services, svc)
	}
	return cfg
}
