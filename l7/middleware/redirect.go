package middleware

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// redirect_scheme and redirect_regex answer with a redirect instead of
// calling the next handler.
//
// The status keeps the method where it matters: GET and HEAD get 302 (301
// when permanent), which clients follow with a GET anyway; any other
// method gets 307 (308), which clients must replay with the same method
// and body (RFC 9110 sections 15.4.3, 15.4.8, 15.4.9).
//
// redirect_scheme redirects a request whose scheme (https when it came
// over TLS, http otherwise) is not Scheme, to the same host, path and
// query on Scheme and Port; the port is left out when it is 0 or the
// scheme's default. Requests already on Scheme pass, whatever their port.
// ACME HTTP-01 challenges (/.well-known/acme-challenge/, RFC 8555 section
// 8.3) always pass: the CA fetches them over plain HTTP on port 80 and,
// although it follows redirects, the certificate manager answering them
// sits behind this middleware when it is an entrypoint default.
//
// redirect_regex matches Regex against the full request URL
// (scheme://host/path?query, path and query as sent, escaped) and
// redirects to Replacement expanded with the match ($1, ${name}). A
// target equal to the request URL passes instead of looping.

// acmePrefix is the path of ACME HTTP-01 challenges (RFC 8555 section 8.3).
const acmePrefix = "/.well-known/acme-challenge/"

func redirectCode(method string, permanent bool) int {
	get := method == http.MethodGet || method == http.MethodHead
	switch {
	case get && permanent:
		return http.StatusMovedPermanently
	case get:
		return http.StatusFound
	case permanent:
		return http.StatusPermanentRedirect
	default:
		return http.StatusTemporaryRedirect
	}
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// requestURI is the path and query as the request carries them, escaped.
func requestURI(r *http.Request) string {
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		return p + "?" + r.URL.RawQuery
	}
	return p
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

type redirectScheme struct {
	scheme    string
	port      string // ":8443", "" for the default
	permanent bool
}

func newRedirectScheme(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.RedirectScheme
	if c == nil {
		return nil, errors.New("redirect_scheme: missing block")
	}
	rs := &redirectScheme{scheme: strings.ToLower(c.Scheme), permanent: c.Permanent}
	if rs.scheme == "" {
		rs.scheme = config.DefaultRedirectScheme
	}
	if rs.scheme != "http" && rs.scheme != "https" {
		return nil, fmt.Errorf("redirect_scheme: scheme %q is not http or https", c.Scheme)
	}
	if c.Port < 0 || c.Port > 65535 {
		return nil, fmt.Errorf("redirect_scheme: port %d is out of range", c.Port)
	}
	if c.Port != 0 && c.Port != defaultPort(rs.scheme) {
		rs.port = ":" + strconv.Itoa(c.Port)
	}
	return rs.wrap, nil
}

func (rs *redirectScheme) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestScheme(r) == rs.scheme || strings.HasPrefix(r.URL.Path, acmePrefix) {
			next.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			// HTTP/1.0 without Host: nowhere to send the client.
			next.ServeHTTP(w, r)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6 literal
		}
		http.Redirect(w, r, rs.scheme+"://"+host+rs.port+requestURI(r), redirectCode(r.Method, rs.permanent))
	})
}

type redirectRegex struct {
	re        *regexp.Regexp
	repl      string
	permanent bool
}

func newRedirectRegex(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.RedirectRegex
	if c == nil {
		return nil, errors.New("redirect_regex: missing block")
	}
	re, err := regexp.Compile(c.Regex)
	if err != nil {
		return nil, fmt.Errorf("redirect_regex: regex: %w", err)
	}
	if c.Replacement == "" {
		return nil, errors.New("redirect_regex: replacement is empty")
	}
	rr := &redirectRegex{re: re, repl: c.Replacement, permanent: c.Permanent}
	return rr.wrap, nil
}

func (rr *redirectRegex) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := requestScheme(r) + "://" + r.Host + requestURI(r)
		m := rr.re.FindStringSubmatchIndex(src)
		if m == nil {
			next.ServeHTTP(w, r)
			return
		}
		target := string(rr.re.ExpandString(nil, rr.repl, src, m))
		if target == src {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, target, redirectCode(r.Method, rr.permanent))
	})
}
