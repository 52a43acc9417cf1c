package middleware

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/proxynow/proxynow/config"
)

// Middleware wraps a handler.
type Middleware = func(http.Handler) http.Handler

// Env is what constructors get from the rest of proxynow.
type Env struct {
	// ClientIP is the request's client address after the PROXY protocol and
	// trusted forwarding headers.
	ClientIP func(*http.Request) netip.Addr
	// ForwardedTrusted reports whether the request's peer is one of the
	// entrypoint's trusted_proxies, whose X-Forwarded-For is believed;
	// nil: no peer is.
	ForwardedTrusted func(*http.Request) bool
	// Service returns the handler of a service by name (error_pages).
	Service func(name string) http.Handler
	Logger  *slog.Logger
	// AddCloser, when set, is given what a middleware holds that must be
	// released when it is retired (a configuration reload that drops or
	// changes it, or shutdown): forward_auth's idle connections.
	AddCloser func(io.Closer)
	// OnRefuse, when set, is called each time a rate_limit or in_flight
	// middleware refuses a request (the rate-limited requests metric).
	OnRefuse func()
}

// constructor builds one kind from its block.
type constructor func(m *config.Middleware, env Env) (Middleware, error)

// kinds maps each kind to its constructor; it is never modified.
var kinds = map[string]constructor{
	config.MWRateLimit:        newRateLimit,
	config.MWInFlight:         newInFlight,
	config.MWIPAllow:          newIPAllow,
	config.MWIPDeny:           newIPDeny,
	config.MWMaxBody:          newMaxBody,
	config.MWBasicAuth:        newBasicAuth,
	config.MWForwardAuth:      newForwardAuth,
	config.MWHeaders:          newHeaders,
	config.MWCompress:         newCompress,
	config.MWRedirectScheme:   newRedirectScheme,
	config.MWRedirectRegex:    newRedirectRegex,
	config.MWStripPrefix:      newStripPrefix,
	config.MWAddPrefix:        newAddPrefix,
	config.MWReplacePath:      newReplacePath,
	config.MWReplacePathRegex: newReplacePathRegex,
	config.MWErrorPages:       newErrorPages,
}

// Build makes the middleware of one block.
func Build(m *config.Middleware, env Env) (Middleware, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.ClientIP == nil {
		env.ClientIP = remoteIP
	}
	c, ok := kinds[m.Kind]
	if !ok {
		return nil, fmt.Errorf("middleware %q: unknown kind %q", m.Name, m.Kind)
	}
	mw, err := c(m, env)
	if err != nil {
		return nil, fmt.Errorf("middleware %q: %w", m.Name, err)
	}
	return mw, nil
}

// Chain folds middlewares so that the first listed runs first.
func Chain(mws ...Middleware) Middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// remoteIP is the peer address, for callers that resolve nothing better.
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// idleCloser closes a transport's idle connections when its middleware is
// retired; requests still in flight keep theirs.
type idleCloser struct{ t *http.Transport }

func (c idleCloser) Close() error {
	c.t.CloseIdleConnections()
	return nil
}
