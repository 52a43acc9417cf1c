package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var (
	// httpServiceAttrs and httpServiceBlocks are what only HTTP services
	// take (on an L4 service they are errors).
	httpServiceAttrs  = []string{"hash_key", "pass_host", "response_header_timeout", "idle_conn_timeout", "max_idle_conns_per_backend", "flush_interval"}
	httpServiceBlocks = []string{"sticky", "health_check", "circuit_breaker", "retry"}
	// httpRouteMatchers are the attributes of an http_route that select
	// requests; two routes that agree on all of them (and on priority)
	// cannot be told apart.
	httpRouteMatchers = []string{"hosts", "path", "path_prefix", "path_regex", "methods", "headers", "query", "client_ip"}
	// httpEntrypointKeys are the HTTP settings of an entrypoint, as
	// recorded in its where.
	httpEntrypointKeys = []string{"max_header_bytes", "trusted_proxies", "http2", "timeouts.write", "middlewares"}
)

// httpRouteDecl is a decoded http_route: the common route fields, and in m
// the matchers, priority and middlewares.
type httpRouteDecl struct {
	routeDecl
	m HTTPRoute
}

// entrypointHTTP decodes the HTTP settings of an entrypoint (timeouts.write
// is decoded with the other timeouts).
func (d *decoder) entrypointHTTP(e *epDecl, s *scope) {
	s.integer("max_header_bytes", &e.HTTP.MaxHeaderBytes)
	e.HTTP.TrustedProxies = s.cidrs("trusted_proxies")
	e.HTTP.Middlewares = s.strList("middlewares")
	for _, nb := range s.nested("http2") {
		e.w.pos["http2"] = posOf(nb.TypeRange)
		ns := d.scope(s.ctx+": http2", nb.Body, e.w, "http2.")
		ns.check(schema{attrs: []string{"max_concurrent_streams"}})
		ns.integer("max_concurrent_streams", &e.HTTP.MaxConcurrentStreams)
	}
}

func (d *decoder) httpRoute(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	r := &httpRouteDecl{routeDecl: routeDecl{Name: name, Pos: p, w: newWhere()}}
	s := d.scope("http_route "+strconv.Quote(name), b.Body, r.w, "")
	s.check(schema{attrs: append([]string{"entrypoints", "priority", "middlewares", "service"}, httpRouteMatchers...)})
	r.Entrypoints = s.strList("entrypoints")
	r.m.Hosts = s.hostList("hosts")
	s.str("path", &r.m.Path)
	s.str("path_prefix", &r.m.PathPrefix)
	s.str("path_regex", &r.m.PathRegex)
	r.m.Methods = s.methodList("methods")
	r.m.Headers = s.headerMap("headers", true)
	r.m.Query = s.queryMap("query")
	r.m.ClientIP = s.cidrs("client_ip")
	s.integer("priority", &r.m.Priority)
	r.m.Middlewares = s.strList("middlewares")
	s.str("service", &r.Service)
	d.out.httpRoutes = append(d.out.httpRoutes, r)
}

// serviceHTTP decodes the HTTP attributes and blocks of a service, and
// its respond block. Whether they fit the service is validation's job.
func (d *decoder) serviceHTTP(sv *serviceDecl, s *scope) {
	h := &sv.HTTP
	if s.str("hash_key", &h.HashKey) {
		if k, ok := strings.CutPrefix(h.HashKey, "header:"); ok && isToken(k) {
			h.HashKey = "header:" + textproto.CanonicalMIMEHeaderKey(k)
		}
	}
	s.boolean("pass_host", &h.PassHost)
	s.duration("response_header_timeout", &h.ResponseHeaderTimeout)
	s.duration("idle_conn_timeout", &h.IdleConnTimeout)
	s.integer("max_idle_conns_per_backend", &h.MaxIdleConnsPerBackend)
	s.duration("flush_interval", &h.FlushInterval)
	block := func(typ string, fields []string, later ...string) *scope {
		nbs := s.nested(typ)
		if len(nbs) == 0 {
			return nil
		}
		sv.w.pos[typ] = posOf(nbs[0].TypeRange)
		ns := d.scope(s.ctx+": "+typ, nbs[0].Body, sv.w, typ+".")
		ns.check(schema{attrs: fields, later: later})
		return ns
	}
	if ns := block("sticky", []string{"cookie", "max_age", "secure", "http_only"}); ns != nil {
		st := &Sticky{}
		h.Sticky = st
		ns.str("cookie", &st.Cookie)
		ns.duration("max_age", &st.MaxAge)
		ns.boolean("secure", &st.Secure)
		ns.boolean("http_only", &st.HTTPOnly)
	}
	if ns := block("health_check", []string{"path", "method", "host", "interval", "timeout", "expect_status", "unhealthy_after", "healthy_after"}); ns != nil {
		hc := &HealthCheck{}
		h.HealthCheck = hc
		ns.str("path", &hc.Path)
		if ns.str("method", &hc.Method) {
			hc.Method = strings.ToUpper(hc.Method)
		}
		ns.str("host", &hc.Host)
		ns.duration("interval", &hc.Interval)
		ns.duration("timeout", &hc.Timeout)
		ns.statusRange("expect_status", &hc.ExpectStatusLo, &hc.ExpectStatusHi)
		ns.integer("unhealthy_after", &hc.UnhealthyAfter)
		ns.integer("healthy_after", &hc.HealthyAfter)
	}
	if ns := block("circuit_breaker", []string{"failure_ratio", "min_requests", "interval", "open_timeout", "failure_status"},
		"half_open_requests", "fallback"); ns != nil {
		cb := &CircuitBreaker{}
		h.CircuitBreaker = cb
		ns.number("failure_ratio", &cb.FailureRatio)
		ns.integer("min_requests", &cb.MinRequests)
		ns.duration("interval", &cb.Interval)
		ns.duration("open_timeout", &cb.OpenTimeout)
		ns.statusRange("failure_status", &cb.FailureStatusLo, &cb.FailureStatusHi)
	}
	if ns := block("retry", []string{"attempts", "per_try_timeout"}, "on"); ns != nil {
		rt := &Retry{}
		h.Retry = rt
		ns.integer("attempts", &rt.Attempts)
		ns.duration("per_try_timeout", &rt.PerTryTimeout)
	}
	if ns := block("respond", []string{"status", "body", "headers"}); ns != nil {
		rs := &Respond{}
		sv.Respond = rs
		ns.integer("status", &rs.Status)
		ns.str("body", &rs.Body)
		rs.Headers = ns.headerMap("headers", false)
	}
}

// number decodes a number; a string holding one (as env() returns) is
// accepted.
func (s *scope) number(name string, dst *float64) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		s.errf(p, "%s must be a number, got %s", name, describe(v))
		s.fail(name)
		return false
	}
	*dst, _ = n.AsBigFloat().Float64()
	return true
}

// statusRange decodes an HTTP status or an inclusive range of them,
// "200" or "200-399" (a number is accepted for a single status).
func (s *scope) statusRange(name string, lo, hi *int) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	sv, err := convert.Convert(v, cty.String)
	var a, b int
	if err == nil {
		a, b, err = parseStatusRange(sv.AsString())
	}
	if err != nil {
		s.errf(p, "%s: %v; write a status such as \"200\" or a range such as \"200-399\", between 100 and 599", name, err)
		s.fail(name)
		return false
	}
	*lo, *hi = a, b
	return true
}

func parseStatusRange(str string) (lo, hi int, err error) {
	status := func(x string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || len(strings.TrimSpace(x)) != 3 || n < 100 || n > 599 {
			return 0, fmt.Errorf("%q is not a status", x)
		}
		return n, nil
	}
	a, b, isRange := strings.Cut(str, "-")
	if lo, err = status(a); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = status(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %q ends before it starts", str)
	}
	return lo, hi, nil
}

// hostList decodes the hosts of an http_route, normalised by hostName. A
// host listed twice (after normalising) is reported and kept once.
func (s *scope) hostList(name string) []string {
	out, _ := s.normList(name, "hosts ignore case and a trailing dot", func(str string) (string, string) {
		n, err := hostName(str)
		if err != nil {
			return "", ": " + err.Error()
		}
		return n, ""
	})
	return out
}

// hostName checks a host of an http_route and returns it normalised: a DNS
// name (or wildcard) as dnsName returns it, or an IP address in canonical
// form, IPv6 without brackets.
func hostName(s string) (string, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", errors.New("missing ']' after the IPv6 address")
		}
		if end < len(s)-1 {
			return "", fmt.Errorf("hosts match without the port; write %q", s[:end+1])
		}
		s = s[1:end]
		if a, err := netip.ParseAddr(s); err != nil || !a.Is6() || a.Zone() != "" {
			return "", errors.New("not an IPv6 address")
		}
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		// A URL ("https://example.com/") would otherwise be read as the
		// host "https" with a port.
		host, _, _ := strings.Cut(rest, "/")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		return "", fmt.Errorf("hosts are names, not %s URLs; write %q", scheme, strings.Trim(host, "[]"))
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an IP address with a zone is never a Host header")
		}
		return a.String(), nil
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return "", fmt.Errorf("hosts match without the port; write %q", s[:i])
	}
	if strings.TrimSuffix(s, ".") == "*" {
		return "", errors.New("a lone \"*\" is not a name; leave hosts out to match any host")
	}
	return dnsName(s, true)
}

// methodList decodes HTTP methods: tokens, upper-cased.
func (s *scope) methodList(name string) []string {
	out, _ := s.normList(name, "methods are upper-cased", func(str string) (string, string) {
		if str == "*" {
			return "", ` is not a method; leave methods out to match any`
		}
		if !isToken(str) {
			return "", ` is not a method name; a method is a token such as "GET"`
		}
		return strings.ToUpper(str), ""
	})
	return out
}

// mapEntry is one entry of a map attribute, with the positions of its key
// and value.
type mapEntry struct {
	key, val     string
	keyAt, valAt Pos
}

// strMap decodes a map of strings such as { "X-Canary" = "1" }. When it
// is written literally each entry keeps its positions, else they are the
// expression's. ok is false when the attribute is absent or not a map;
// entries that failed are reported and left out.
func (s *scope) strMap(name string) (entries []mapEntry, ok bool) {
	a := s.body.Attributes[name]
	if a == nil {
		return nil, false
	}
	key := s.key + name
	entries = []mapEntry{}
	if obj, isObj := a.Expr.(*hclsyntax.ObjectConsExpr); isObj {
		s.w.pos[key] = posOf(obj.Range())
		for i, it := range obj.Items {
			kv, kp, ok := s.eval(name+" key", fmt.Sprintf("%s.%d.key", key, i), it.KeyExpr)
			if !ok {
				s.w.bad[key] = true
				continue
			}
			ks, err := convert.Convert(kv, cty.String)
			if err != nil {
				s.errf(kp, "%s: a key must be a string, got %s", name, describe(kv))
				s.w.bad[key] = true
				continue
			}
			k := ks.AsString()
			vv, vp, ok := s.eval(fmt.Sprintf("%s[%q]", name, k), fmt.Sprintf("%s.%d", key, i), it.ValueExpr)
			if !ok {
				s.w.bad[key] = true
				continue
			}
			if vv.Type() != cty.String {
				s.errf(vp, "%s[%q] must be a string, got %s", name, k, describe(vv))
				s.w.bad[key] = true
				continue
			}
			entries = append(entries, mapEntry{key: k, val: vv.AsString(), keyAt: kp, valAt: vp})
		}
		return entries, true
	}
	v, p, ok := s.eval(name, key, a.Expr)
	if !ok {
		return nil, false
	}
	if t := v.Type(); !t.IsObjectType() && !t.IsMapType() {
		s.errf(p, "%s must be a map of strings, e.g. { \"name\" = \"value\" }; got %s", name, describe(v))
		s.fail(name)
		return nil, false
	}
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		if ev.IsNull() || ev.Type() != cty.String {
			s.errf(p, "%s[%q] must be a string", name, k.AsString())
			s.fail(name)
			continue
		}
		entries = append(entries, mapEntry{key: k.AsString(), val: ev.AsString(), keyAt: p, valAt: p})
	}
	return entries, true
}

// headerMap decodes header names and values; names are canonicalised. A
// request matcher may not name Host (hosts does that); a response may not
// set the framing headers, which proxynow derives from the body.
func (s *scope) headerMap(name string, request bool) map[string]string {
	es, ok := s.strMap(name)
	if !ok {
		return nil
	}
	out := map[string]string{}
	bad := func() { s.fail(name) }
	for _, e := range es {
		c := textproto.CanonicalMIMEHeaderKey(e.key)
		switch {
		case !isToken(e.key):
			s.errf(e.keyAt, "%s: %q is not a header name; use letters, digits and !#$%%&'*+-.^_`|~", name, e.key)
			bad()
		case request && c == "Host":
			s.errf(e.keyAt, "%s: match the Host header with hosts = [...]", name)
			bad()
		case !request && (c == "Content-Length" || c == "Transfer-Encoding"):
			s.errf(e.keyAt, "%s: %s is set from the body; remove it", name, c)
			bad()
		case strings.ContainsAny(e.val, "\r\n\x00"):
			s.errf(e.valAt, "%s[%q]: a header value must not hold CR, LF or NUL", name, e.key)
			bad()
		default:
			if _, dup := out[c]; dup {
				s.errf(e.keyAt, "%s: header %q is listed twice (header names ignore case)", name, c)
				bad()
				continue
			}
			out[c] = e.val
		}
	}
	return out
}

// queryMap decodes query parameters to match; names are compared as
// written.
func (s *scope) queryMap(name string) map[string]string {
	es, ok := s.strMap(name)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, e := range es {
		switch _, dup := out[e.key]; {
		case e.key == "":
			s.errf(e.keyAt, "%s: a parameter name must not be empty", name)
			s.fail(name)
		case dup:
			s.errf(e.keyAt, "%s: parameter %q is listed twice", name, e.key)
			s.fail(name)
		default:
			out[e.key] = e.val
		}
	}
	return out
}

// isToken reports whether s is an RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
