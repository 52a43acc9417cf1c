package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults of the HTTP settings, as documented on the types.
const (
	DefaultMaxHeaderBytes         = 65536
	DefaultMaxConcurrentStreams   = 250
	DefaultHashKey                = HashClientIP
	DefaultResponseHeaderTimeout  = 30 * time.Second
	DefaultIdleConnTimeout        = 90 * time.Second
	DefaultMaxIdleConnsPerBackend = 256
	DefaultStickyCookie           = "proxynow_sticky"
	DefaultHealthCheckPath        = "/"
	DefaultHealthCheckMethod      = "GET"
	DefaultHealthCheckInterval    = 5 * time.Second
	DefaultHealthCheckTimeout     = 2 * time.Second
	DefaultExpectStatusLo         = 200
	DefaultExpectStatusHi         = 399
	DefaultUnhealthyAfter         = 2
	DefaultHealthyAfter           = 1
	DefaultFailureRatio           = 0.5
	DefaultMinRequests            = 20
	DefaultBreakerInterval        = 10 * time.Second
	DefaultOpenTimeout            = 30 * time.Second
	DefaultFailureStatusLo        = 500
	DefaultFailureStatusHi        = 599
	DefaultRetryAttempts          = 2
	DefaultRespondStatus          = 200
)

// defaultHealthCheckTimeout is a health check's timeout when none is
// written: DefaultHealthCheckTimeout, or half the interval when that is
// shorter, so that `interval = "1s"` alone is a valid block (a timeout
// must be shorter than the interval, and the user wrote no timeout to
// fix). HAProxy's `inter` alone and Caddy's health_interval alone are
// likewise valid.
func defaultHealthCheckTimeout(interval time.Duration) time.Duration {
	if interval > 0 && interval/2 < DefaultHealthCheckTimeout {
		return interval / 2
	}
	return DefaultHealthCheckTimeout
}

// Limits of the HTTP settings of an entrypoint.
const (
	minMaxHeaderBytes       = 1024
	maxMaxHeaderBytes       = 16 << 20
	maxMaxConcurrentStreams = 10000
)

// The layer of a service: what its backends speak.
const (
	layerUnknown = iota // no backend, or backends of both layers (reported)
	layerL4
	layerHTTP
)

// serviceLayer is layerHTTP for a service with a respond block or
// http://, https://, h2c:// and h3:// backends, layerL4 for one with host:port
// and tls:// backends.
func serviceLayer(s *serviceDecl) int {
	if s.w.has("respond") {
		return layerHTTP
	}
	layer := layerUnknown
	for _, b := range s.backends {
		switch l := schemeLayer(b.scheme); {
		case l == layerUnknown:
		case layer != layerUnknown && l != layer:
			return layerUnknown
		default:
			layer = l
		}
	}
	return layer
}

// urlPort is the port a missing-port message suggests, per scheme.
var urlPort = map[string]string{SchemeHTTP: ":80", SchemeHTTPS: ":443", SchemeH3: ":443"}

func schemeLayer(scheme string) int {
	switch scheme {
	case SchemeTCP, SchemeTLS:
		return layerL4
	case SchemeHTTP, SchemeHTTPS, SchemeH2C, SchemeH3:
		return layerHTTP
	}
	return layerUnknown
}

// applyHTTPDefaults fills the HTTP settings of TCP entrypoints and HTTP
// services, and the respond block. L4 services and UDP entrypoints keep
// them zero; a respond service keeps every backend setting zero.
func applyHTTPDefaults(c *decls) {
	setDur := func(w where, k string, dst *time.Duration, def time.Duration) {
		if !w.has(k) {
			*dst = def
		}
	}
	setInt := func(w where, k string, dst *int, def int) {
		if !w.has(k) {
			*dst = def
		}
	}
	for _, e := range c.entrypoints {
		if e.Network == NetworkTCP {
			setInt(e.w, "max_header_bytes", &e.HTTP.MaxHeaderBytes, DefaultMaxHeaderBytes)
			setInt(e.w, "http2.max_concurrent_streams", &e.HTTP.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
		}
	}
	for _, s := range c.services {
		if r := s.Respond; r != nil {
			setInt(s.w, "respond.status", &r.Status, DefaultRespondStatus)
			continue
		}
		if serviceLayer(s) != layerHTTP {
			continue
		}
		h, w := &s.HTTP, s.w
		if s.Balancer == BalancerHash && !w.has("hash_key") {
			h.HashKey = DefaultHashKey
		}
		if !w.has("pass_host") {
			h.PassHost = true
		}
		setDur(w, "response_header_timeout", &h.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
		setDur(w, "idle_conn_timeout", &h.IdleConnTimeout, DefaultIdleConnTimeout)
		setInt(w, "max_idle_conns_per_backend", &h.MaxIdleConnsPerBackend, DefaultMaxIdleConnsPerBackend)
		if st := h.Sticky; st != nil {
			if !w.has("sticky.cookie") {
				st.Cookie = DefaultStickyCookie
			}
			if !w.has("sticky.http_only") {
				st.HTTPOnly = true
			}
		}
		if hc := h.HealthCheck; hc != nil {
			if !w.has("health_check.path") {
				hc.Path = DefaultHealthCheckPath
			}
			if !w.has("health_check.method") {
				hc.Method = DefaultHealthCheckMethod
			}
			setDur(w, "health_check.interval", &hc.Interval, DefaultHealthCheckInterval)
			setDur(w, "health_check.timeout", &hc.Timeout, defaultHealthCheckTimeout(hc.Interval))
			if !w.has("health_check.expect_status") {
				hc.ExpectStatusLo, hc.ExpectStatusHi = DefaultExpectStatusLo, DefaultExpectStatusHi
			}
			setInt(w, "health_check.unhealthy_after", &hc.UnhealthyAfter, DefaultUnhealthyAfter)
			setInt(w, "health_check.healthy_after", &hc.HealthyAfter, DefaultHealthyAfter)
		}
		if cb := h.CircuitBreaker; cb != nil {
			if !w.has("circuit_breaker.failure_ratio") {
				cb.FailureRatio = DefaultFailureRatio
			}
			setInt(w, "circuit_breaker.min_requests", &cb.MinRequests, DefaultMinRequests)
			setDur(w, "circuit_breaker.interval", &cb.Interval, DefaultBreakerInterval)
			setDur(w, "circuit_breaker.open_timeout", &cb.OpenTimeout, DefaultOpenTimeout)
			if !w.has("circuit_breaker.failure_status") {
				cb.FailureStatusLo, cb.FailureStatusHi = DefaultFailureStatusLo, DefaultFailureStatusHi
			}
		}
		if rt := h.Retry; rt != nil {
			setInt(w, "retry.attempts", &rt.Attempts, DefaultRetryAttempts)
		}
	}
}

// entrypointHTTP checks the HTTP settings of an entrypoint.
func (v *validator) entrypointHTTP(ctx string, e *epDecl) {
	if e.Network == NetworkUDP {
		for _, k := range httpEntrypointKeys {
			if e.w.has(k) {
				v.errf(e.w.pos[k], "%s: %s applies to tcp entrypoints only", ctx, k)
			}
		}
		return
	}
	v.between(ctx, e.w, "max_header_bytes", e.HTTP.MaxHeaderBytes, minMaxHeaderBytes, maxMaxHeaderBytes)
	v.between(ctx+": http2", e.w, "http2.max_concurrent_streams", e.HTTP.MaxConcurrentStreams, 1, maxMaxConcurrentStreams)
	v.positive(ctx+": timeouts", e.w, "timeouts.write", e.HTTP.WriteTimeout, true)
	v.middlewareRefs(ctx, e.w, e.HTTP.Middlewares)
	if e.w.ok("middlewares") {
		eachAt(e.w, "middlewares", e.HTTP.Middlewares, func(_ int, n string, at Pos) { v.depthTrust(ctx, at, n, e.Name) })
	}
	if !v.hasHTTPRoute(e.Name) {
		// Only http_routes make an entrypoint serve HTTP: on an L4-only
		// one these settings do nothing (middlewares are refused below).
		for _, k := range append([]string{"timeouts.read_header"}, httpEntrypointKeys...) {
			if k != "middlewares" && e.w.has(k) {
				v.warnf(e.w.pos[k], "%s: %s is an HTTP setting and no http_route uses this entrypoint, so it has no effect", ctx, k)
			}
		}
	}
	if e.w.ok("middlewares") && len(e.HTTP.Middlewares) > 0 && !v.hasHTTPRoute(e.Name) {
		// Traefik users put a redirect on an entrypoint with no routers;
		// here an entrypoint without http_routes serves no HTTP at all.
		v.errf(e.w.pos["middlewares"], "%s: middlewares run on requests of this entrypoint's http_routes and it has none, so they would never run; add an http_route with entrypoints = [%q] (path_prefix = \"/\" takes every request), or remove middlewares",
			ctx, e.Name)
	}
}

// between reports a written whole number outside lo..hi; hi 0 means no
// upper bound.
func (v *validator) between(ctx string, w where, key string, n, lo, hi int) {
	if !w.ok(key) || n >= lo && (hi == 0 || n <= hi) {
		return
	}
	name := key[strings.LastIndexByte(key, '.')+1:]
	if hi == 0 {
		v.errf(w.pos[key], "%s: %s must be at least %d, got %d", ctx, name, lo, n)
		return
	}
	v.errf(w.pos[key], "%s: %s must be between %d and %d, got %d", ctx, name, lo, hi, n)
}

// serviceHTTP checks the HTTP settings of a service and its respond block,
// and that they fit its layer.
func (v *validator) serviceHTTP(ctx string, s *serviceDecl) {
	w := s.w
	httpKeys := append(slices.Clone(httpServiceAttrs), httpServiceBlocks...)
	switch layer := serviceLayer(s); {
	case w.has("respond"):
		for _, k := range append([]string{"balancer", "proxy_protocol", "connect_timeout", "fail_timeout", "tls"}, httpKeys...) {
			if w.has(k) {
				v.errf(w.pos[k], "%s: %s has no effect in a service with respond, which has no backends; remove it", ctx, k)
			}
		}
		v.respond(ctx, s)
		return
	case layer == layerL4:
		const l4 = "this service has L4 backends (host:port or tls://); remove it, or use http://, https://, h2c:// or h3:// backends"
		if w.ok("balancer") && slices.Contains(httpBalancers, s.Balancer) {
			v.errf(w.pos["balancer"], "%s: balancer %q is only for HTTP services, and %s", ctx, s.Balancer, l4)
		}
		for _, k := range httpKeys {
			if w.has(k) {
				v.errf(w.pos[k], "%s: %s is only for HTTP services, and %s", ctx, k, l4)
			}
		}
		return
	case layer != layerHTTP:
		return
	}
	if w.has("proxy_protocol") {
		v.errf(w.pos["proxy_protocol"], "%s: proxy_protocol toward HTTP backends is not supported yet; remove it", ctx)
	}
	h := &s.HTTP
	if w.ok("hash_key") {
		v.hashKey(ctx, s)
	}
	v.positive(ctx, w, "response_header_timeout", h.ResponseHeaderTimeout, false)
	v.positive(ctx, w, "idle_conn_timeout", h.IdleConnTimeout, false)
	v.between(ctx, w, "max_idle_conns_per_backend", h.MaxIdleConnsPerBackend, 1, 0)
	v.positive(ctx, w, "flush_interval", h.FlushInterval, true)
	if st := h.Sticky; st != nil {
		if w.ok("sticky.cookie") && !isToken(st.Cookie) {
			v.errf(w.pos["sticky.cookie"], "%s: sticky: cookie %q is not a cookie name; use letters, digits and !#$%%&'*+-.^_`|~", ctx, st.Cookie)
		}
		v.positive(ctx+": sticky", w, "sticky.max_age", st.MaxAge, true)
	}
	if hc := h.HealthCheck; hc != nil {
		hctx := ctx + ": health_check"
		if w.ok("health_check.path") && (!strings.HasPrefix(hc.Path, "/") || strings.ContainsAny(hc.Path, " \t\r\n\x00")) {
			v.errf(w.pos["health_check.path"], "%s: path %q must start with \"/\" and hold no space or control character", hctx, hc.Path)
		}
		if w.ok("health_check.method") && !isToken(hc.Method) {
			v.errf(w.pos["health_check.method"], "%s: %q is not a method name; a method is a token such as \"GET\"", hctx, hc.Method)
		}
		if w.ok("health_check.host") && (hc.Host == "" || strings.ContainsAny(hc.Host, " \t\r\n\x00/")) {
			v.errf(w.pos["health_check.host"], "%s: host %q is not a Host header value; write a name such as \"api.example.com\", or leave host out to send the backend's", hctx, hc.Host)
		}
		v.positive(hctx, w, "health_check.interval", hc.Interval, false)
		v.positive(hctx, w, "health_check.timeout", hc.Timeout, false)
		if hc.Timeout > 0 && hc.Timeout >= hc.Interval && !w.bad["health_check.timeout"] && !w.bad["health_check.interval"] {
			v.errf(w.at("health_check.timeout", w.pos["health_check.interval"]), "%s: timeout %s must be shorter than interval %s", hctx, hc.Timeout, hc.Interval)
		}
		v.between(hctx, w, "health_check.unhealthy_after", hc.UnhealthyAfter, 1, 0)
		v.between(hctx, w, "health_check.healthy_after", hc.HealthyAfter, 1, 0)
	}
	if cb := h.CircuitBreaker; cb != nil {
		cctx := ctx + ": circuit_breaker"
		if w.ok("circuit_breaker.failure_ratio") && (cb.FailureRatio <= 0 || cb.FailureRatio > 1) {
			v.errf(w.pos["circuit_breaker.failure_ratio"], "%s: failure_ratio must be greater than 0 and at most 1, got %g", cctx, cb.FailureRatio)
		}
		v.between(cctx, w, "circuit_breaker.min_requests", cb.MinRequests, 1, 0)
		v.positive(cctx, w, "circuit_breaker.interval", cb.Interval, false)
		v.positive(cctx, w, "circuit_breaker.open_timeout", cb.OpenTimeout, false)
	}
	if rt := h.Retry; rt != nil {
		v.between(ctx+": retry", w, "retry.attempts", rt.Attempts, 1, 0)
		v.positive(ctx+": retry", w, "retry.per_try_timeout", rt.PerTryTimeout, true)
		if w.ok("retry.per_try_timeout") && h.ResponseHeaderTimeout > 0 && rt.PerTryTimeout >= h.ResponseHeaderTimeout {
			// Both bound the wait for response headers; the shorter wins.
			v.warnf(w.pos["retry.per_try_timeout"], "%s: retry: per_try_timeout %v is not shorter than response_header_timeout %v, which ends each try first, so it has no effect",
				ctx, rt.PerTryTimeout, h.ResponseHeaderTimeout)
		}
	}
}

var hashKeys = []string{HashClientIP, HashPath, HashHost, "header:NAME", "cookie:NAME"}

// hashKey checks hash_key and warns when the balancer does not use it.
func (v *validator) hashKey(ctx string, s *serviceDecl) {
	k, at := s.HTTP.HashKey, s.w.pos["hash_key"]
	kind, name, hasName := strings.Cut(k, ":")
	switch {
	case !hasName && slices.Contains(hashKeys[:3], k):
	case hasName && (kind == "header" || kind == "cookie"):
		if !isToken(name) {
			v.errf(at, "%s: hash_key %q: %q is not a %s name; use letters, digits and !#$%%&'*+-.^_`|~", ctx, k, name, kind)
			return
		}
	default:
		v.errf(at, "%s: unknown hash_key %q%s", ctx, k, oneOf(k, hashKeys))
		return
	}
	if s.Balancer != BalancerHash && !s.w.bad["balancer"] {
		v.warnf(at, "%s: hash_key has no effect unless balancer = %q", ctx, BalancerHash)
	}
}

// respond checks the respond block of a service.
func (v *validator) respond(ctx string, s *serviceDecl) {
	for _, b := range s.backends {
		v.errf(b.Pos, "%s: backend %q: a service with respond answers itself and has no backends; remove the backend or the respond block", ctx, b.label)
	}
	// A 1xx is an interim response: net/http sends it and then a 200 of
	// its own (101 without an Upgrade leaves a dead connection).
	if s.w.ok("respond.status") && (s.Respond.Status < 200 || s.Respond.Status > 599) {
		v.errf(s.w.pos["respond.status"], "%s: respond: status must be a final status between 200 and 599, got %d", ctx, s.Respond.Status)
	}
	if st := s.Respond.Status; s.w.ok("respond.body") && s.Respond.Body != "" && (st == 204 || st == 304) {
		v.warnf(s.w.pos["respond.body"], "%s: respond: a %d answer has no body, so body is never sent; remove it", ctx, st)
	}
}

// httpRoute checks the matchers, middlewares and service of an http_route.
func (v *validator) httpRoute(r *httpRouteDecl) {
	v.route("http_route", NetworkTCP, &r.routeDecl)
	ctx, w, m := fmt.Sprintf("http_route %q", r.Name), r.w, &r.m
	empty := map[string]string{
		"hosts":     "match any host",
		"methods":   "match any method",
		"headers":   "match any headers",
		"query":     "match any query",
		"client_ip": "match any client",
	}
	lens := map[string]int{"hosts": len(m.Hosts), "methods": len(m.Methods), "headers": len(m.Headers), "query": len(m.Query), "client_ip": len(m.ClientIP)}
	for _, k := range httpRouteMatchers {
		if hint, ok := empty[k]; ok && w.ok(k) && lens[k] == 0 {
			v.errf(w.pos[k], "%s: %s must not be empty; leave it out to %s", ctx, k, hint)
		}
	}
	var first string
	for _, k := range []string{"path", "path_prefix", "path_regex"} {
		if !w.has(k) {
			continue
		}
		if first != "" {
			v.errf(w.pos[k], "%s: %s and %s (%s) cannot be combined; write one of path, path_prefix and path_regex", ctx, k, first, w.pos[first])
			continue
		}
		first = k
	}
	for k, p := range map[string]string{"path": m.Path, "path_prefix": m.PathPrefix} {
		switch {
		case !w.ok(k):
		case !strings.HasPrefix(p, "/"):
			v.errf(w.pos[k], "%s: %s %q must start with \"/\"", ctx, k, p)
		case strings.ContainsAny(p, "?#"):
			v.errf(w.pos[k], "%s: %s %q: paths are matched without the query; match it with query = { ... }", ctx, k, p)
		case strings.HasSuffix(p, "*"):
			// Caddy's "/api/*" and nginx's habit: here the '*' would be
			// matched literally, and no request path ends with it.
			v.errf(w.pos[k], "%s: %s %q: paths match literally, '*' is no wildcard; write path_prefix = %q", ctx, k, p, strings.TrimRight(p, "*"))
		}
	}
	if w.ok("path_regex") {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			v.errf(w.pos["path_regex"], "%s: path_regex %q: %s", ctx, m.PathRegex, sentence(err.Error()))
		}
	}
	v.routeMiddlewares(ctx, r)
}

// httpOverlaps reports an http_route that matches exactly the same
// requests as an earlier one on a shared entrypoint, with the same
// priority: the earlier one always wins. It also reports an entrypoint
// whose connections that are not TLS are wanted both by HTTP and by a
// tcp_route with tls = "none".
func (v *validator) httpOverlaps() {
	plain := map[string]*routeDecl{} // entrypoint -> tcp_route with tls = "none"
	for _, r := range v.c.tcpRoutes {
		if !r.w.ok("entrypoints") || r.TLS != TLSNone || sniALPN(r) != "" {
			continue
		}
		for _, ep := range r.Entrypoints {
			if plain[ep] == nil {
				plain[ep] = r
			}
		}
	}
	owners := map[string]*httpRouteDecl{} // entrypoint and matchers -> route
	reported := map[string]bool{}
	for _, r := range v.c.httpRoutes {
		if !r.w.ok("entrypoints") {
			continue
		}
		key, comparable := matcherKey(r)
		for i, ep := range r.Entrypoints {
			e := v.eps[ep]
			if e == nil || e.Network != NetworkTCP || slices.Index(r.Entrypoints, ep) < i {
				continue
			}
			at := r.w.at(fmt.Sprintf("entrypoints.%d", i), r.w.pos["entrypoints"])
			if t := plain[ep]; t != nil && !reported["plain\x00"+ep] {
				reported["plain\x00"+ep] = true
				v.errf(at, "http_route %q: entrypoint %q gives connections that are not TLS to tcp_route %q (%s), which has tls = %q, and HTTP needs them too; move one of them to another entrypoint",
					r.Name, ep, t.Name, t.Pos, TLSNone)
			}
			if !comparable {
				continue
			}
			k := ep + "\x00" + key
			prev := owners[k]
			if prev == nil {
				owners[k] = r
				continue
			}
			if once := r.Name + "\x00" + prev.Name; !reported[once] {
				reported[once] = true
				v.errf(at, "http_route %q: on entrypoint %q it matches the same requests as http_route %q (%s) with the same priority, so it can never win; change a matcher or the priority",
					r.Name, ep, prev.Name, prev.Pos)
			}
		}
	}
}

// matcherKey is a string equal for two routes exactly when their matchers
// and priority are; comparable is false when a matcher failed (already
// reported).
func matcherKey(r *httpRouteDecl) (key string, comparable bool) {
	for _, k := range append([]string{"priority"}, httpRouteMatchers...) {
		if r.w.has(k) && !r.w.ok(k) {
			return "", false
		}
	}
	m := &r.m
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	pairs := func(mp map[string]string) []string {
		var out []string
		for k, val := range mp {
			out = append(out, k+"="+val)
		}
		return sorted(out)
	}
	var ips []string
	for _, p := range m.ClientIP {
		ips = append(ips, p.String())
	}
	return fmt.Sprintf("%q %q %q %q %q %q %q %q %d", sorted(m.Hosts), m.Path, m.PathPrefix, m.PathRegex,
		sorted(m.Methods), pairs(m.Headers), pairs(m.Query), sorted(ips), m.Priority), true
}

// buildHTTPRoute is the Config form of a validated http_route.
func buildHTTPRoute(r *httpRouteDecl) HTTPRoute {
	h := r.m
	h.Name, h.Entrypoints, h.Service, h.Pos = r.Name, r.Entrypoints, r.Service, r.Pos
	if len(h.Middlewares) == 0 {
		h.Middlewares = nil
	}
	return h
}

// backendScheme checks the scheme of a backend label and that a URL holds
// nothing but scheme://host:port; false means the backend is reported.
func (v *validator) backendScheme(bctx string, b *backendDecl) bool {
	switch {
	case schemeLayer(b.scheme) != layerUnknown:
	case slices.Contains(laterSchemes, b.scheme):
		v.errf(b.Pos, "%s: %s:// backends are not supported yet; use http://, https://, h2c:// or h3://", bctx, b.scheme)
		return false
	default:
		hint := didYouMean(b.scheme, []string{SchemeTLS, SchemeHTTP, SchemeHTTPS, SchemeH2C, SchemeH3})
		switch {
		case b.scheme == "tcp":
			hint = "; write host:port without a scheme for plain TCP"
		case b.scheme == "ws" || b.scheme == "wss":
			hint = "; WebSocket backends are http:// or https:// backends"
		case hint == "":
			hint = "; use host:port or tls://host:port (L4), or http://, https://, h2c:// or h3://host:port (HTTP)"
		}
		v.errf(b.Pos, "%s: unknown scheme %q%s", bctx, b.scheme, hint)
		return false
	}
	if strings.Contains(b.label, "://") && strings.ContainsAny(b.Address, "/?#@") {
		v.errf(b.Pos, "%s: backend URLs take scheme://host:port only; remove the path, query or user", bctx)
		return false
	}
	return true
}

// routeLayer reports a route whose service speaks the other layer: an
// http_route needs an HTTP service, a tcp_route or udp_route an L4 one.
func (v *validator) routeLayer(ctx, kind string, r *routeDecl) {
	s := v.svcs[r.Service]
	switch l := serviceLayer(s); {
	case kind == "http_route" && l == layerL4:
		v.errf(r.w.pos["service"], "%s: service %q has L4 backends (host:port or tls://); an http_route needs an HTTP service, with http://, https://, h2c:// or h3:// backends or a respond block",
			ctx, r.Service)
	case kind != "http_route" && l == layerHTTP:
		what := "http://, https://, h2c:// or h3:// backends"
		if s.w.has("respond") {
			what = "a respond block"
		}
		v.errf(r.w.pos["service"], "%s: service %q is an HTTP service (it has %s); %s needs host:port or tls:// backends",
			ctx, r.Service, what, article(kind))
	}
}

// article is kind with its indefinite article.
func article(kind string) string {
	if strings.HasPrefix(kind, "http") {
		return "an " + kind
	}
	return "a " + kind
}
