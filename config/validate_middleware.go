package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the middlewares, as documented on the types.
const (
	DefaultMiddlewareKey      = KeyClientIP
	DefaultRateLimitPeriod    = time.Second
	DefaultRateLimitMaxKeys   = 100000
	DefaultBasicAuthRealm     = "proxynow"
	DefaultForwardAuthTimeout = 5 * time.Second
	DefaultHSTSMaxAge         = 8760 * time.Hour
	DefaultCompressMinLength  = 1024
	DefaultRedirectScheme     = "https"
)

var (
	// compressEncodings are the encodings compress knows, and its default
	// order of preference.
	compressEncodings = []string{"zstd", "br", "gzip"}
	// defaultCompressTypes are the media type prefixes compressed when
	// types is not written.
	defaultCompressTypes = []string{"text/", "application/json", "application/javascript", "application/xml", "application/wasm", "image/svg+xml"}
	redirectSchemes      = []string{"https", "http"}
	limitKeys            = []string{KeyClientIP, KeyHost, "header:NAME"}
)

// hstsPreloadMinAge is the least max_age hstspreload.org accepts.
const hstsPreloadMinAge = 8760 * time.Hour

// applyMiddlewareDefaults fills what a middleware's kind did not write.
func applyMiddlewareDefaults(c *decls) {
	for _, m := range c.middlewares {
		w := m.w
		def := func(k string) bool { return !w.has(k) }
		switch {
		case m.RateLimit != nil:
			x := m.RateLimit
			if def("burst") {
				x.Burst = x.Average
			}
			if def("period") {
				x.Period = DefaultRateLimitPeriod
			}
			if def("key") {
				x.Key = DefaultMiddlewareKey
			}
			if def("max_keys") {
				x.MaxKeys = DefaultRateLimitMaxKeys
			}
		case m.InFlight != nil:
			if def("key") {
				m.InFlight.Key = DefaultMiddlewareKey
			}
		case m.BasicAuth != nil:
			if def("realm") {
				m.BasicAuth.Realm = DefaultBasicAuthRealm
			}
			if def("strip_header") {
				m.BasicAuth.StripHeader = true
			}
		case m.ForwardAuth != nil:
			if def("timeout") {
				m.ForwardAuth.Timeout = DefaultForwardAuthTimeout
			}
		case m.Headers != nil:
			if h := m.Headers.HSTS; h != nil && def("hsts.max_age") {
				h.MaxAge = DefaultHSTSMaxAge
			}
		case m.Compress != nil:
			x := m.Compress
			if def("encodings") {
				x.Encodings = slices.Clone(compressEncodings)
			}
			if def("min_length") {
				x.MinLength = DefaultCompressMinLength
			}
			if def("types") {
				x.Types = slices.Clone(defaultCompressTypes)
			}
		case m.RedirectScheme != nil:
			if def("scheme") {
				m.RedirectScheme.Scheme = DefaultRedirectScheme
			}
		}
	}
}

// mwCtx is the prefix of a middleware's messages.
func mwCtx(m *mwDecl) string { return fmt.Sprintf("middleware %q: %s", m.Name, m.Kind) }

// need reports a required attribute that is missing, at the block at; it
// reports whether the attribute is there and decoded.
func (v *validator) need(ctx string, w where, at Pos, key, example string) bool {
	if !w.has(key) {
		name := key[strings.LastIndexByte(key, '.')+1:]
		v.errf(at, "%s: missing required attribute %q; add %s = %s", ctx, name, name, example)
		return false
	}
	return w.ok(key)
}

// notEmpty reports a written list that is empty; it reports whether the
// list is there, decoded and not empty.
func (v *validator) notEmpty(ctx string, w where, key string, n int, hint string) bool {
	if w.ok(key) && n == 0 {
		v.errf(w.pos[key], "%s: %s must not be empty; %s", ctx, key[strings.LastIndexByte(key, '.')+1:], hint)
		return false
	}
	return w.ok(key)
}

// eachAt calls f with each element of a decoded list and its position.
func eachAt(w where, key string, list []string, f func(i int, s string, at Pos)) {
	for i, s := range list {
		f(i, s, w.at(fmt.Sprintf("%s.%d", key, i), w.pos[key]))
	}
}

// middlewares checks every middleware block.
func (v *validator) middlewares() {
	for _, m := range v.c.middlewares {
		ctx, w, at := mwCtx(m), m.w, m.kindAt
		switch m.Kind {
		case MWRateLimit:
			x := m.RateLimit
			if v.need(ctx, w, at, "average", "100") {
				v.between(ctx, w, "average", x.Average, 1, 0)
			}
			v.between(ctx, w, "burst", x.Burst, 1, 0)
			v.positive(ctx, w, "period", x.Period, false)
			v.limitKey(ctx, w, x.Key)
			v.between(ctx, w, "max_keys", x.MaxKeys, 1, 0)
		case MWInFlight:
			if v.need(ctx, w, at, "max", "100") {
				v.between(ctx, w, "max", m.InFlight.Max, 1, 0)
			}
			v.limitKey(ctx, w, m.InFlight.Key)
		case MWBasicAuth:
			v.basicAuth(ctx, m)
		case MWForwardAuth:
			x := m.ForwardAuth
			if v.need(ctx, w, at, "address", `"http://auth.internal:9000/verify"`) {
				if u, err := url.Parse(x.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
					v.errf(w.pos["address"], "%s: address %q must be an http:// or https:// URL with a host, e.g. \"http://auth.internal:9000/verify\"", ctx, x.Address)
				}
			}
			v.positive(ctx, w, "timeout", x.Timeout, false)
		case MWHeaders:
			v.headers(ctx, m)
		case MWCompress:
			v.compress(ctx, m)
		case MWRedirectScheme:
			v.enum(ctx, w, "scheme", m.RedirectScheme.Scheme, redirectSchemes)
			v.between(ctx, w, "port", m.RedirectScheme.Port, 0, 65535)
		case MWRedirectRegex:
			v.regex(ctx, w, at, m.RedirectRegex.Regex, `"^http://(.*)$"`)
			if v.need(ctx, w, at, "replacement", `"https://example.com/$1"`) && m.RedirectRegex.Replacement == "" {
				v.errf(w.pos["replacement"], "%s: replacement must not be empty; write the URL to redirect to", ctx)
			}
		case MWStripPrefix:
			x := m.StripPrefix
			if v.need(ctx, w, at, "prefixes", `["/api"]`) && v.notEmpty(ctx, w, "prefixes", len(x.Prefixes), "list the prefixes to strip") {
				eachAt(w, "prefixes", x.Prefixes, func(i int, p string, at Pos) {
					switch {
					case slices.Index(x.Prefixes, p) < i:
						v.errf(at, "%s: prefix %q is listed twice", ctx, p)
					case !strings.HasPrefix(p, "/"):
						v.errf(at, "%s: prefixes[%d] %q must start with \"/\"", ctx, i, p)
					case strings.HasSuffix(p, "*"):
						v.errf(at, "%s: prefixes[%d] %q: prefixes match literally, '*' is no wildcard; write %q", ctx, i, p, strings.TrimRight(p, "*/"))
					}
				})
			}
		case MWAddPrefix:
			v.urlPath(ctx, w, at, "prefix", m.AddPrefix.Prefix, `"/api"`)
		case MWReplacePath:
			v.urlPath(ctx, w, at, "path", m.ReplacePath.Path, `"/new"`)
		case MWReplacePathRegex:
			v.regex(ctx, w, at, m.ReplacePathRegex.Regex, `"^/old/(.*)$"`)
			if v.need(ctx, w, at, "replacement", `"/new/$1"`) && m.ReplacePathRegex.Replacement == "" {
				v.errf(w.pos["replacement"], "%s: replacement must not be empty; write the new path", ctx)
			}
		case MWIPAllow, MWIPDeny:
			x := m.IPAllow
			if x == nil {
				x = m.IPDeny
			}
			if v.need(ctx, w, at, "cidrs", `["10.0.0.0/8"]`) {
				v.notEmpty(ctx, w, "cidrs", len(x.CIDRs), "list the client addresses, e.g. [\"10.0.0.0/8\"]")
			}
			if m.Kind == MWIPDeny && w.has("depth") {
				v.errf(w.pos["depth"], "%s: depth applies to ip_allow only; remove it", ctx)
			} else {
				v.between(ctx, w, "depth", x.Depth, 0, 0)
			}
		case MWMaxBody:
			if v.need(ctx, w, at, "bytes", "1048576") && m.MaxBody.Bytes <= 0 {
				v.errf(w.pos["bytes"], "%s: bytes must be greater than 0, got %d", ctx, m.MaxBody.Bytes)
			}
		case MWErrorPages:
			v.errorPages(ctx, m)
		}
	}
}

// limitKey checks the key of rate_limit and in_flight.
func (v *validator) limitKey(ctx string, w where, k string) {
	if !w.ok("key") {
		return
	}
	switch name, isHeader := strings.CutPrefix(k, "header:"); {
	case k == KeyClientIP || k == KeyHost:
	case isHeader && isToken(name):
	case isHeader:
		v.errf(w.pos["key"], "%s: key %q: %q is not a header name; use letters, digits and !#$%%&'*+-.^_`|~", ctx, k, name)
	default:
		v.errf(w.pos["key"], "%s: unknown key %q%s", ctx, k, oneOf(k, limitKeys))
	}
}

// regex checks a required regex attribute that must compile.
func (v *validator) regex(ctx string, w where, at Pos, re, example string) {
	if !v.need(ctx, w, at, "regex", example) {
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		v.errf(w.pos["regex"], "%s: regex %q: %s", ctx, re, sentence(err.Error()))
	}
}

// urlPath checks a required attribute holding a path that starts with "/".
func (v *validator) urlPath(ctx string, w where, at Pos, key, p, example string) {
	if v.need(ctx, w, at, key, example) && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n\x00")) {
		v.errf(w.pos[key], "%s: %s %q must start with \"/\" and hold no query, fragment, space or control character", ctx, key, p)
	}
}

// basicAuth checks the users list, realm and header_field of basic_auth.
// The users_file is read by checkFiles.
func (v *validator) basicAuth(ctx string, m *mwDecl) {
	x, w := m.BasicAuth, m.w
	if !w.has("users") && !w.has("users_file") {
		v.errf(m.kindAt, "%s: add users = [\"USER:HASH\"] or users_file = \"FILE\", with lines made by htpasswd -nB USER", ctx)
	}
	if w.ok("users") {
		if len(x.Users) == 0 && !w.has("users_file") {
			v.errf(w.pos["users"], "%s: users must not be empty; list \"USER:HASH\" lines made by htpasswd -nB USER", ctx)
		}
		var users []string
		eachAt(w, "users", x.Users, func(i int, e string, at Pos) {
			u, err := htpasswdEntry(e)
			switch {
			case err != nil:
				v.errf(at, "%s: users[%d]: %v", ctx, i, err)
			case slices.Contains(users, u):
				v.errf(at, "%s: users[%d]: user %q is listed twice", ctx, i, u)
			}
			users = append(users, u)
		})
	}
	if w.ok("users_file") && x.UsersFile == "" {
		v.errf(w.pos["users_file"], "%s: users_file must not be empty; name an htpasswd file", ctx)
	}
	if w.ok("realm") && (x.Realm == "" || strings.ContainsFunc(x.Realm, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7f })) {
		v.errf(w.pos["realm"], "%s: realm %q must not be empty nor hold a quote, backslash or control character", ctx, x.Realm)
	}
	if w.ok("header_field") && !isToken(x.HeaderField) {
		v.errf(w.pos["header_field"], "%s: header_field %q is not a header name; use letters, digits and !#$%%&'*+-.^_`|~", ctx, x.HeaderField)
	}
}

// headers checks the headers kind.
func (v *validator) headers(ctx string, m *mwDecl) {
	x, w := m.Headers, m.w
	for _, typ := range []string{"request", "response"} {
		for _, op := range []string{"set", "add", "remove"} {
			k := typ + "." + op
			n := map[string]int{"request.set": len(x.Request.Set), "request.add": len(x.Request.Add), "request.remove": len(x.Request.Remove),
				"response.set": len(x.Response.Set), "response.add": len(x.Response.Add), "response.remove": len(x.Response.Remove)}[k]
			v.notEmpty(ctx+": "+typ, w, k, n, "leave it out")
		}
	}
	empty := func(o HeaderOps) bool { return len(o.Set) == 0 && len(o.Add) == 0 && len(o.Remove) == 0 }
	written := slices.ContainsFunc([]string{"set", "add", "remove"}, func(op string) bool {
		return w.has("request."+op) || w.has("response."+op) // reported when empty or broken
	})
	if empty(x.Request) && empty(x.Response) && x.CORS == nil && x.HSTS == nil && !x.Security && !written {
		v.errf(m.kindAt, "%s sets nothing; add request { ... }, response { ... }, cors { ... }, hsts { ... } or security = true", ctx)
	}
	if c := x.CORS; c != nil {
		cctx := ctx + ": cors"
		if v.need(cctx, w, w.pos["cors"], "cors.allow_origins", `["https://app.example.com"]`) &&
			v.notEmpty(cctx, w, "cors.allow_origins", len(c.AllowOrigins), "list the origins, or \"*\" for any") {
			v.corsOrigins(cctx, w, c)
		}
		v.positive(cctx, w, "cors.max_age", c.MaxAge, true)
		for _, k := range []string{"cors.allow_methods", "cors.allow_headers", "cors.expose_headers"} {
			n := map[string]int{"cors.allow_methods": len(c.AllowMethods), "cors.allow_headers": len(c.AllowHeaders), "cors.expose_headers": len(c.ExposeHeaders)}[k]
			v.notEmpty(cctx, w, k, n, "leave it out")
		}
	}
	if h := x.HSTS; h != nil {
		hctx := ctx + ": hsts"
		v.positive(hctx, w, "hsts.max_age", h.MaxAge, false)
		if h.Preload && (!h.IncludeSubdomains || h.MaxAge < hstsPreloadMinAge) {
			v.warnf(w.at("hsts.preload", w.pos["hsts"]), "%s: the preload list needs include_subdomains = true and a max_age of at least \"8760h\" (hstspreload.org); browsers will not preload this site", hctx)
		}
	}
}

// corsOrigins checks allow_origins: "*" alone, or exact origins
// "scheme://host[:port]" (lower-cased by the decoder).
func (v *validator) corsOrigins(ctx string, w where, c *CORS) {
	star := slices.Contains(c.AllowOrigins, "*")
	eachAt(w, "cors.allow_origins", c.AllowOrigins, func(i int, o string, at Pos) {
		if slices.Index(c.AllowOrigins, o) < i {
			v.errf(at, "%s: origin %q is listed twice", ctx, o)
			return
		}
		if o == "*" {
			if len(c.AllowOrigins) > 1 {
				v.errf(at, "%s: \"*\" allows every origin; list it alone or list exact origins", ctx)
			}
			if c.AllowCredentials {
				v.errf(at, "%s: allow_credentials cannot be combined with allow_origins \"*\" (the CORS specification forbids it); list the exact origins", ctx)
			}
			return
		}
		if star {
			return
		}
		u, err := url.Parse(o)
		switch {
		case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
			v.errf(at, "%s: allow_origins[%d] %q is not an origin; write scheme://host[:port], e.g. \"https://app.example.com\"", ctx, i, o)
		case u.Path == "/" && u.RawQuery == "" && u.Fragment == "":
			v.errf(at, "%s: allow_origins[%d] %q: an origin has no path; write %q", ctx, i, o, strings.TrimSuffix(o, "/"))
		case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.ForceQuery:
			v.errf(at, "%s: allow_origins[%d] %q: an origin has no user, path, query or fragment; write scheme://host[:port]", ctx, i, o)
		case strings.Contains(u.Host, "*"):
			v.errf(at, "%s: allow_origins[%d] %q: origins are matched exactly; list each one, or \"*\" for any", ctx, i, o)
		case u.Port() != "" && !validPort(u.Port()):
			v.errf(at, "%s: allow_origins[%d] %q: port must be between 1 and 65535", ctx, i, o)
		}
	})
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// compress checks the compress kind.
func (v *validator) compress(ctx string, m *mwDecl) {
	x, w := m.Compress, m.w
	if v.notEmpty(ctx, w, "encodings", len(x.Encodings), "leave it out to use zstd, br and gzip") {
		eachAt(w, "encodings", x.Encodings, func(i int, e string, at Pos) {
			switch {
			case !slices.Contains(compressEncodings, e):
				v.errf(at, "%s: unknown encoding %q%s", ctx, e, oneOf(e, compressEncodings))
			case slices.Index(x.Encodings, e) < i:
				v.errf(at, "%s: encoding %q is listed twice", ctx, e)
			}
		})
	}
	if w.ok("min_length") && x.MinLength < 1 {
		// 0 is what the compressor takes for "not set" (the default):
		// refused rather than silently read as 1024.
		v.errf(w.pos["min_length"], "%s: min_length must be at least 1, got %d; 1 compresses every response with a body (nginx's gzip_min_length 0)", ctx, x.MinLength)
	}
	if v.notEmpty(ctx, w, "types", len(x.Types), "leave it out to use the default text, JSON, JavaScript, XML, SVG and wasm types") {
		eachAt(w, "types", x.Types, func(i int, t string, at Pos) {
			typ, sub, ok := strings.Cut(t, "/")
			switch {
			case ok && typ != "*" && sub == "*":
				// Caddy's "text/*": a prefix match never sees a '*'.
				v.errf(at, "%s: types[%d] %q: types match as prefixes, not wildcards; write %q", ctx, i, t, typ+"/")
			case strings.Contains(t, "*"):
				v.errf(at, "%s: types[%d] %q: types match as prefixes, not wildcards; list the types to compress, such as \"text/\" or \"application/json\"", ctx, i, t)
			case !ok || !isToken(typ) || sub != "" && !isToken(sub):
				v.errf(at, "%s: types[%d] %q is not a media type or a prefix of one, such as \"text/\" or \"application/json\"", ctx, i, t)
			case slices.Index(x.Types, t) < i:
				v.errf(at, "%s: type %q is listed twice", ctx, t)
			}
		})
	}
}

// errorPages checks the error_pages kind; its service counts as used.
func (v *validator) errorPages(ctx string, m *mwDecl) {
	x, w, at := m.ErrorPages, m.w, m.kindAt
	if v.need(ctx, w, at, "statuses", `["500-599"]`) {
		v.notEmpty(ctx, w, "statuses", len(x.Statuses), "list statuses or ranges such as \"500-599\"")
	}
	if v.need(ctx, w, at, "service", `"NAME"`) {
		s := v.svcs[x.Service]
		switch {
		case s == nil:
			names := make([]string, 0, len(v.c.services))
			for _, s := range v.c.services {
				names = append(names, s.Name)
			}
			v.errf(w.pos["service"], "%s: unknown service %q%s", ctx, x.Service, didYouMean(x.Service, names))
		case serviceLayer(s) == layerL4:
			v.errf(w.pos["service"], "%s: service %q has L4 backends (host:port or tls://); error pages need an HTTP service, with http://, https://, h2c:// or h3:// backends or a respond block",
				ctx, x.Service)
		default:
			v.usedSvc[x.Service] = true
		}
	}
	if v.need(ctx, w, at, "path", `"/errors/{status}.html"`) && (!strings.HasPrefix(x.Path, "/") || strings.ContainsAny(x.Path, "# \t\r\n\x00")) {
		v.errf(w.pos["path"], "%s: path %q must start with \"/\" and hold no fragment, space or control character", ctx, x.Path)
	}
}

// middlewareRefs checks a middlewares list of an entrypoint or route:
// each name must name a middleware, once.
func (v *validator) middlewareRefs(ctx string, w where, names []string) {
	if !w.ok("middlewares") {
		return
	}
	eachAt(w, "middlewares", names, func(i int, n string, at Pos) {
		switch {
		case slices.Index(names, n) < i:
			v.errf(at, "%s: middleware %q is listed twice", ctx, n)
		case v.mws[n] == nil:
			known := make([]string, 0, len(v.c.middlewares))
			for _, m := range v.c.middlewares {
				known = append(known, m.Name)
			}
			v.errf(at, "%s: unknown middleware %q%s", ctx, n, didYouMean(n, known))
		default:
			v.usedMW[n] = true
		}
	})
}

// routeMiddlewares checks the middlewares of an http_route, and warns
// about one that an entrypoint of the route already runs (it would run
// twice).
func (v *validator) routeMiddlewares(ctx string, r *httpRouteDecl) {
	v.middlewareRefs(ctx, r.w, r.m.Middlewares)
	if !r.w.ok("middlewares") || !r.w.ok("entrypoints") {
		return
	}
	eachAt(r.w, "middlewares", r.m.Middlewares, func(i int, n string, at Pos) {
		for _, ep := range r.Entrypoints {
			if e := v.eps[ep]; e != nil && e.w.ok("middlewares") && slices.Contains(e.HTTP.Middlewares, n) {
				v.warnf(at, "%s: entrypoint %q already runs middleware %q for every request, so it runs twice here", ctx, ep, n)
			}
			v.depthTrust(ctx, at, n, ep)
		}
	})
}

// depthTrust warns when an ip_allow with depth runs on an entrypoint
// without trusted_proxies: X-Forwarded-For is read only from those, so
// every request would be refused.
func (v *validator) depthTrust(ctx string, at Pos, mw, ep string) {
	m, e := v.mws[mw], v.eps[ep]
	if m == nil || e == nil || m.IPAllow == nil || m.IPAllow.Depth <= 0 || len(e.HTTP.TrustedProxies) > 0 {
		return
	}
	v.warnf(at, "%s: middleware %q (ip_allow with depth) reads X-Forwarded-For only from trusted_proxies, and entrypoint %q has none, so it refuses every request; add trusted_proxies or remove depth", ctx, mw, ep)
}

// buildMiddlewares is the Config form of the validated middlewares.
func buildMiddlewares(c *decls) []Middleware {
	out := []Middleware{}
	for _, m := range c.middlewares {
		out = append(out, m.Middleware)
	}
	return out
}
