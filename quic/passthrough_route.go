package quic

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/proxynow/proxynow/tlsmux"
)

// passTable is the compiled PassRoutes of an entrypoint; lookups allocate
// nothing. It mirrors tlsmux's SNI matching, which is not exported.
type passTable struct {
	exact    map[string]*PassRoute
	wildcard map[string]*PassRoute // keyed by the part after "*."
	any      *PassRoute            // a route without SNI
}

func compilePassRoutes(routes []PassRoute) (*passTable, error) {
	t := &passTable{exact: map[string]*PassRoute{}, wildcard: map[string]*PassRoute{}}
	for i := range routes {
		r := &routes[i]
		if r.Pool == nil {
			return nil, fmt.Errorf("quic_route %q: no service pool", r.Name)
		}
		if len(r.SNI) == 0 {
			if t.any != nil {
				return nil, fmt.Errorf("quic_routes %q and %q both match every SNI", t.any.Name, r.Name)
			}
			t.any = r
		}
		for _, name := range r.SNI {
			name = string(lowerSNI(nil, []byte(name)))
			m, key := t.exact, name
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				m, key = t.wildcard, rest
			}
			if key == "" || strings.Contains(key, "*") {
				return nil, fmt.Errorf("quic_route %q: bad SNI name %q", r.Name, name)
			}
			if o := m[key]; o != nil {
				return nil, fmt.Errorf("quic_routes %q and %q both claim SNI %q", o.Name, r.Name, name)
			}
			m[key] = r
		}
	}
	return t, nil
}

func (t *passTable) empty() bool {
	return len(t.exact) == 0 && len(t.wildcard) == 0 && t.any == nil
}

// match picks the route for a hello: exact SNI, then a wildcard covering
// it, then the route without SNI; nil means the local server's.
func (t *passTable) match(h *tlsmux.ClientHello) *PassRoute {
	var buf [256]byte
	name := lowerSNI(buf[:0], h.ServerName)
	if len(name) > 0 {
		if r := t.exact[string(name)]; r != nil {
			return r
		}
		if i := bytes.IndexByte(name, '.'); i > 0 {
			if r := t.wildcard[string(name[i+1:])]; r != nil {
				return r
			}
		}
	}
	return t.any
}

// lowerSNI appends name lower-cased (ASCII) without a trailing dot.
func lowerSNI(dst, name []byte) []byte {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
