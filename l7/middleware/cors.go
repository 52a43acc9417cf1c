package middleware

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// cors is the `cors` block of headers (Fetch standard, "CORS protocol").
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered here with 204 and never reaches the backend. When the origin,
// the method and every requested header are allowed, the answer carries
// Access-Control-Allow-Origin, -Allow-Methods (the configured list),
// -Allow-Headers (the requested ones), -Allow-Credentials and -Max-Age;
// otherwise it carries none of them and the browser blocks the request.
// This is what rs/cors and Traefik do: a refusal is the absence of the
// headers, not a 403, and a preflight is not the backend's business.
//
// Any other request with an allowed Origin gets Access-Control-Allow-Origin
// (the request's origin; "*" when allow_origins is "*" without
// credentials), -Allow-Credentials and -Expose-Headers, set over the
// backend's. Vary: Origin is added whenever the answer depends on the
// origin, with or without an Origin in the request, so caches keep one
// copy per origin.
//
// Origins match exactly, ignoring case. allow_methods defaults to GET,
// HEAD, POST and is case-sensitive (RFC 9110 §9.1); allow_headers defaults
// to Accept, Content-Type, X-Requested-With. "*" in either allows anything
// requested, echoed back since browsers ignore the wildcard on credentialed
// requests. max_age is sent in whole seconds when set.

var (
	corsDefaultMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	corsDefaultHeaders = []string{"Accept", "Content-Type", "X-Requested-With"}

	corsTrue          = hdValue("true")
	corsStar          = hdValue("*")
	corsVaryOrigin    = hdValue("Origin")
	corsVaryPreflight = hdValue("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
)

type cors struct {
	anyOrigin   bool
	origins     []string
	anyMethod   bool
	methods     []string
	methodsVal  []string // the Allow-Methods value
	anyHeader   bool
	headers     []string
	expose      []string // the Expose-Headers value, nil for none
	credentials bool
	maxAge      []string // the Max-Age value, nil for none
}

func buildCORS(c *config.CORS) (*cors, error) {
	if len(c.AllowOrigins) == 0 {
		return nil, errors.New("allow_origins is empty")
	}
	x := &cors{credentials: c.AllowCredentials}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			x.anyOrigin = true
			continue
		}
		x.origins = append(x.origins, o)
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = corsDefaultMethods
	}
	for _, m := range methods {
		if m == "*" {
			x.anyMethod = true
			continue
		}
		x.methods = append(x.methods, m)
	}
	x.methodsVal = hdValue(strings.Join(x.methods, ", "))
	allowed := c.AllowHeaders
	if len(allowed) == 0 {
		allowed = corsDefaultHeaders
	}
	for _, h := range allowed {
		if h == "*" {
			x.anyHeader = true
			continue
		}
		x.headers = append(x.headers, h)
	}
	if len(c.ExposeHeaders) > 0 {
		x.expose = hdValue(strings.Join(c.ExposeHeaders, ", "))
	}
	if c.MaxAge > 0 {
		x.maxAge = hdValue(strconv.FormatInt(int64(c.MaxAge.Seconds()), 10))
	}
	return x, nil
}

func (c *cors) isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Origin"]) > 0 && len(r.Header["Access-Control-Request-Method"]) > 0
}

// allowOrigin returns the Access-Control-Allow-Origin value for r, if its
// origin is allowed. Several Origin lines are no browser's: refused.
func (c *cors) allowOrigin(r *http.Request) ([]string, bool) {
	o := r.Header["Origin"]
	if len(o) != 1 || o[0] == "" {
		return nil, false
	}
	if c.anyOrigin {
		if c.credentials {
			return o[:1:1], true
		}
		return corsStar, true
	}
	for _, a := range c.origins {
		if strings.EqualFold(a, o[0]) {
			return o[:1:1], true
		}
	}
	return nil, false
}

// preflight writes the CORS headers of a preflight's answer into h.
func (c *cors) preflight(h http.Header, r *http.Request) {
	hdAppend(h, "Vary", corsVaryPreflight)
	acao, ok := c.allowOrigin(r)
	if !ok {
		return
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if !c.anyMethod && !slices.Contains(c.methods, method) {
		return
	}
	requested := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
	if !c.anyHeader {
		for name := range strings.SplitSeq(requested, ",") {
			name = strings.TrimSpace(name)
			if name != "" && !slices.ContainsFunc(c.headers, func(a string) bool { return strings.EqualFold(a, name) }) {
				return
			}
		}
	}
	h["Access-Control-Allow-Origin"] = acao
	if c.anyMethod {
		h["Access-Control-Allow-Methods"] = []string{method}
	} else {
		h["Access-Control-Allow-Methods"] = c.methodsVal
	}
	if strings.TrimSpace(requested) != "" {
		h["Access-Control-Allow-Headers"] = []string{requested}
	}
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = corsTrue
	}
	if c.maxAge != nil {
		h["Access-Control-Max-Age"] = c.maxAge
	}
}

// actual writes the CORS headers of a non-preflight response into h.
func (c *cors) actual(h http.Header, r *http.Request) {
	if (!c.anyOrigin || c.credentials) && !corsVaries(h["Vary"], "Origin") {
		hdAppend(h, "Vary", corsVaryOrigin)
	}
	acao, ok := c.allowOrigin(r)
	if !ok {
		return
	}
	h["Access-Control-Allow-Origin"] = acao
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = corsTrue
	}
	if c.expose != nil {
		h["Access-Control-Expose-Headers"] = c.expose
	}
}

// corsVaries reports whether the Vary lines already name field or "*".
func corsVaries(lines []string, field string) bool {
	for _, l := range lines {
		for f := range strings.SplitSeq(l, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, field) {
				return true
			}
		}
	}
	return false
}
