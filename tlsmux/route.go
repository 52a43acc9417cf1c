package tlsmux

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/proxynow/proxynow/l4"
)

// Mode is what a route does with a TLS connection.
type Mode int

const (
	// Passthrough forwards the connection's bytes untouched.
	Passthrough Mode = iota
	// Terminate completes the handshake and forwards the plaintext.
	Terminate
	// Plain takes connections that are not TLS and forwards the bytes
	// untouched.
	Plain
)

func (m Mode) String() string {
	switch m {
	case Passthrough:
		return "passthrough"
	case Terminate:
		return "terminate"
	default:
		return "plain"
	}
}

// Route is one tcp_route on an entrypoint.
type Route struct {
	Name string
	// SNI holds lower-case names without a trailing dot: exact names and
	// "*.example.com" wildcards, which match exactly one more label. Empty
	// means any name (and clients sending none).
	SNI []string
	// ALPN, when set, restricts the route to clients offering one of these
	// protocols; under Terminate they are also what the server advertises.
	ALPN    []string
	Mode    Mode
	Handler l4.Handler
}

// table is the compiled routes of one entrypoint. Lookups allocate nothing.
type table struct {
	exact    map[string][]*Route
	wildcard map[string][]*Route // keyed by the part after "*."
	any      []*Route            // TLS routes without SNI
	plain    *Route
}

func compile(routes []Route) (*table, error) {
	t := &table{exact: map[string][]*Route{}, wildcard: map[string][]*Route{}}
	for i := range routes {
		r := &routes[i]
		if r.Mode == Plain {
			if t.plain != nil {
				return nil, fmt.Errorf("routes %q and %q are both plain catch-alls", t.plain.Name, r.Name)
			}
			t.plain = r
			continue
		}
		if len(r.SNI) == 0 {
			t.any = append(t.any, r)
		}
		for _, name := range r.SNI {
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				t.wildcard[rest] = append(t.wildcard[rest], r)
			} else {
				t.exact[name] = append(t.exact[name], r)
			}
		}
	}
	return t, nil
}

// match picks the route for a ClientHello in three tiers: exact SNI, then a
// wildcard covering it, then routes without SNI. Within a tier the client's
// ALPN protocols are tried in the client's order of preference, and the
// first one a route lists picks that route; else the tier's route without
// ALPN. Routes whose ALPN the client does not offer never match. nil means
// no TLS route claims the connection.
func (t *table) match(h *ClientHello) *Route {
	var buf [256]byte
	name := lowerName(buf[:0], h.ServerName)
	if r := pick(t.exact[string(name)], h); r != nil {
		return r
	}
	if i := bytes.IndexByte(name, '.'); i > 0 {
		if r := pick(t.wildcard[string(name[i+1:])], h); r != nil {
			return r
		}
	}
	return pick(t.any, h)
}

func pick(routes []*Route, h *ClientHello) *Route {
	if len(routes) == 0 {
		return nil
	}
	for _, p := range h.ALPN() {
		for _, r := range routes {
			for _, a := range r.ALPN {
				if a == string(p) {
					return r
				}
			}
		}
	}
	for _, r := range routes {
		if len(r.ALPN) == 0 {
			return r
		}
	}
	return nil
}
