package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/proxynow/proxynow/config"
)

// forward_auth asks an auth service about each request, as Traefik's
// forwardAuth does by default:
//
//   - The subrequest is a GET without a body to Address, whatever the
//     client's method (Traefik keeps the method only with its opt-in
//     preserveRequestMethod); the original method, scheme, host, URI and
//     client address travel in X-Forwarded-Method, -Proto, -Host, -Uri and
//     -For.
//   - It carries the request's headers named in RequestHeaders, or all of
//     them when the list is empty, minus the hop-by-hop ones (RFC 9110
//     §7.6.1), Content-Length and Expect.
//   - Unless TrustForwardHeader is set, X-Forwarded-*, Forwarded and
//     X-Real-Ip from the client never reach the auth service: the five
//     headers above are computed by proxynow (X-Forwarded-For is the
//     resolved client address). With it set, a client value of a header
//     wins, and X-Forwarded-For gets the client address appended.
//   - A 2xx answer lets the request through. Every ResponseHeaders name is
//     first deleted from the request, then the auth answer's values are
//     copied: a client cannot pass its own X-User to the backend when the
//     auth service sets none. Names that differ only by '_' for '-' are
//     deleted too, since CGI-style backends (PHP, WSGI) read X_User and
//     X-User as the same HTTP_X_USER, and net/http does not canonicalise
//     names holding '_'.
//   - Any other answer, redirects included (they are not followed), is
//     returned to the client: status, headers minus hop-by-hop, body. A
//     body over 1 MiB means a misbehaving service: 502.
//   - An unreachable service is 502, one that does not answer within
//     Timeout (default 5s) is 504, both in plain text.
//
// One http.Client per middleware keeps connections to the auth service
// alive (up to 64 idle); it never uses HTTP proxies from the environment
// and asks for no compression, so headers and bodies pass unchanged.

// faMaxBody caps the body of a refusal copied to the client.
const faMaxBody = 1 << 20

// faDrain is how much of a 2xx body is read so its connection is reused.
const faDrain = 64 << 10

// hopHeaders are the hop-by-hop headers (RFC 9110 §7.6.1), as in
// net/http/httputil, and the framing of a body the subrequest lacks.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

type forwardAuth struct {
	address  string
	trust    bool
	reqHdrs  []string // canonical; nil: all
	respHdrs []string // canonical
	client   *http.Client
	clientIP func(*http.Request) netip.Addr
	log      *slog.Logger
}

func newForwardAuth(m *config.Middleware, env Env) (Middleware, error) {
	fa, err := buildForwardAuth(m.ForwardAuth, env)
	if err != nil {
		return nil, fmt.Errorf("forward_auth: %w", err)
	}
	return fa.wrap, nil
}

func buildForwardAuth(c *config.ForwardAuth, env Env) (*forwardAuth, error) {
	if c == nil {
		return nil, errors.New("missing block")
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("address %q must be an http:// or https:// URL with a host", c.Address)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = config.DefaultForwardAuthTimeout
	}
	canon := func(names []string) []string {
		out := make([]string, 0, len(names))
		for _, n := range names {
			out = append(out, http.CanonicalHeaderKey(n))
		}
		return out
	}
	if env.ClientIP == nil {
		env.ClientIP = remoteIP
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	fa := &forwardAuth{
		address:  u.String(),
		trust:    c.TrustForwardHeader,
		respHdrs: canon(c.ResponseHeaders),
		log:      env.Logger,
		clientIP: env.ClientIP,
	}
	if len(c.RequestHeaders) > 0 {
		fa.reqHdrs = canon(c.RequestHeaders)
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64, // one auth host: the default 2 would redial under load
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
		DisableCompression:  true,
	}
	if env.AddCloser != nil {
		env.AddCloser(idleCloser{tr})
	}
	fa.client = &http.Client{
		Transport: tr,
		// A redirect is the auth service's answer to the client (to a login
		// page), not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
	return fa, nil
}

func (fa *forwardAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		areq, err := http.NewRequestWithContext(r.Context(), http.MethodGet, fa.address, nil)
		if err != nil {
			fa.fail(w, r, err)
			return
		}
		fa.authHeaders(r, areq.Header)
		resp, err := fa.client.Do(areq)
		if err != nil {
			fa.fail(w, r, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			fa.refuse(w, r, resp)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, faDrain))
		if len(fa.respHdrs) > 0 {
			fa.dropSpoofed(r.Header)
			for _, k := range fa.respHdrs {
				if v := resp.Header[k]; len(v) > 0 {
					r.Header[k] = append([]string(nil), v...)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authHeaders fills the subrequest's headers h from r.
func (fa *forwardAuth) authHeaders(r *http.Request, h http.Header) {
	if fa.reqHdrs == nil {
		for k, v := range r.Header {
			h[k] = append([]string(nil), v...)
		}
	} else {
		for _, k := range fa.reqHdrs {
			if v := r.Header[k]; len(v) > 0 {
				h[k] = append([]string(nil), v...)
			}
		}
	}
	for _, v := range r.Header["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	delete(h, "Content-Length") // the subrequest has no body
	delete(h, "Expect")
	if !fa.trust {
		for k := range h {
			if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" || k == "X-Real-Ip" {
				delete(h, k)
			}
		}
	}

	// With trust, a client value wins (Traefik's rule); h holds it only if
	// it was copied, so read r.
	trusted := func(k string) string {
		if fa.trust {
			return r.Header.Get(k)
		}
		return ""
	}
	set := func(k, computed string) {
		if v := trusted(k); v != "" {
			computed = v
		}
		if computed == "" {
			delete(h, k)
			return
		}
		h[k] = []string{computed}
	}
	set("X-Forwarded-Method", r.Method)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	set("X-Forwarded-Proto", proto)
	set("X-Forwarded-Host", r.Host)
	set("X-Forwarded-Uri", r.URL.RequestURI())
	client := ""
	if ip := fa.clientIP(r); ip.IsValid() {
		client = ip.String()
	}
	if prior := r.Header["X-Forwarded-For"]; fa.trust && len(prior) > 0 {
		xff := strings.Join(prior, ", ")
		if client != "" {
			xff += ", " + client
		}
		h["X-Forwarded-For"] = []string{xff}
	} else if client != "" {
		h["X-Forwarded-For"] = []string{client}
	} else {
		delete(h, "X-Forwarded-For")
	}
}

// dropSpoofed deletes from the request every header the auth service
// answers for, including spellings with '_' for '-'.
func (fa *forwardAuth) dropSpoofed(h http.Header) {
	for _, k := range fa.respHdrs {
		delete(h, k)
	}
	for k := range h {
		if !strings.Contains(k, "_") {
			continue
		}
		dashed := strings.ReplaceAll(k, "_", "-")
		for _, name := range fa.respHdrs {
			if strings.EqualFold(dashed, name) {
				delete(h, k)
				break
			}
		}
	}
}

// refuse copies the auth service's non-2xx answer to the client.
func (fa *forwardAuth) refuse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, faMaxBody+1))
	switch {
	case err != nil:
		fa.fail(w, r, err)
		return
	case len(body) > faMaxBody:
		fa.log.Warn("forward_auth: refusal body over 1 MiB", "address", fa.address, "status", resp.StatusCode)
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		return
	}
	out := w.Header()
	for k, v := range resp.Header {
		out[k] = append([]string(nil), v...)
	}
	for _, v := range resp.Header["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(out, k)
	}
	// The body is whole: let net/http frame it.
	delete(out, "Content-Length")
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// fail answers when the auth service gave no answer: 504 on a timeout, 502
// otherwise. A client that went away is not worth a warning, but still gets
// a 502, so the access log does not record the 200 net/http would write.
func (fa *forwardAuth) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		fa.log.Debug("forward_auth: client gone", "address", fa.address, "error", err)
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		fa.log.Warn("forward_auth: timeout", "address", fa.address, "error", err)
		http.Error(w, "504 Gateway Timeout", http.StatusGatewayTimeout)
		return
	}
	fa.log.Warn("forward_auth: auth service unreachable", "address", fa.address, "error", err)
	http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
}
