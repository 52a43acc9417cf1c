package l7

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// Warnings reports routes that can never match: for every request such a
// route accepts, one earlier-ranked route accepts it too. It finds one
// route shadowing another (a duplicate of lower rank, a catch-all of
// higher priority); a route covered only by several others together is
// not reported, and a path_regex is only known to cover the same regex or
// the exact paths it matches. Each warning is at the shadowed route's
// block, as config's own warnings are at theirs.
func (rt *Router) Warnings() config.Diagnostics {
	var out config.Diagnostics
	for _, b := range rt.routes {
		for _, a := range rt.candidates(b) {
			if a != b && a.shadows(b) {
				out = append(out, config.Diagnostic{
					Severity: config.SeverityWarning,
					Pos:      b.route.Config.Pos,
					Message: fmt.Sprintf("http_route %q can never match: http_route %q (%s) takes every request it would",
						b.name, a.name, a.route.Config.Pos),
				})
				break
			}
		}
	}
	return out
}

// WarningsOn is Warnings with each message saying which entrypoint the
// routes are on: a route may be shadowed on one entrypoint and not on
// another.
func (rt *Router) WarningsOn(entrypoint string) config.Diagnostics {
	ws := rt.Warnings()
	for i := range ws {
		ws[i].Message = fmt.Sprintf("entrypoint %q: %s", entrypoint, ws[i].Message)
	}
	return ws
}

// candidates are the routes that could cover b's first host: the only
// ones that can shadow b.
func (rt *Router) candidates(b *matcher) []*matcher {
	var out []*matcher
	add := func(t *tier) {
		if t == nil {
			return
		}
		add := func(es []entry) {
			for _, e := range es {
				out = append(out, e.m)
			}
		}
		add(t.regex)
		add(t.none)
		t.paths.each(func(n *pathNode) {
			add(n.exact)
			add(n.prefix)
		})
	}
	add(rt.any)
	if len(b.hosts) > 0 {
		h := b.hosts[0]
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			add(rt.wildcard[rest])
		} else {
			add(rt.exact[h])
			if i := strings.IndexByte(h, '.'); i > 0 {
				add(rt.wildcard[h[i+1:]])
			}
		}
	}
	return out
}

// shadows reports whether a accepts every request b accepts, and ranks
// above b for each of them.
func (a *matcher) shadows(b *matcher) bool {
	if !a.pathCovers(b) || !a.othersCover(b) {
		return false
	}
	if len(b.hosts) == 0 {
		ra, rb := a.rank, b.rank
		return len(a.hosts) == 0 && ra.beats(&rb)
	}
	for _, h := range b.hosts {
		ta := a.hostTier(h)
		if ta < 0 {
			return false
		}
		ra, rb := a.rank, b.rank
		ra.tier, rb.tier = ta, tierExact
		if strings.HasPrefix(h, "*.") {
			rb.tier = tierWildcard
		}
		if !ra.beats(&rb) {
			return false
		}
	}
	return true
}

// hostTier is the tier by which a matches every request for b's host h
// (exact or wildcard), or -1.
func (a *matcher) hostTier(h string) int {
	if len(a.hosts) == 0 {
		return tierAny
	}
	if slices.Contains(a.hosts, h) {
		if strings.HasPrefix(h, "*.") {
			return tierWildcard
		}
		return tierExact
	}
	if i := strings.IndexByte(h, '.'); i > 0 && h[0] != '*' && slices.Contains(a.hosts, "*"+h[i:]) {
		return tierWildcard
	}
	return -1
}

// pathCovers reports whether a's path matcher accepts every path b's does.
func (a *matcher) pathCovers(b *matcher) bool {
	ac, bc := a.route.Config, b.route.Config
	switch {
	case a.rank.path == 0:
		return true
	case ac.PathPrefix != "":
		return b.re == nil && b.rank.path > 0 && strings.HasPrefix(bc.Path+bc.PathPrefix, ac.PathPrefix)
	case ac.Path != "":
		return bc.Path == ac.Path
	}
	return bc.PathRegex == ac.PathRegex || bc.Path != "" && a.re.MatchString(bc.Path)
}

// othersCover reports whether a's other matchers accept every request b's
// accept: each of a's is absent or looser than b's.
func (a *matcher) othersCover(b *matcher) bool {
	if len(a.methods) > 0 && (len(b.methods) == 0 || !subset(b.methods, a.methods)) {
		return false
	}
	if !subset(a.headers, b.headers) || !subset(a.query, b.query) {
		return false
	}
	if len(a.client) == 0 {
		return true
	}
	if len(b.client) == 0 {
		return false
	}
	for _, bp := range b.client {
		if !slices.ContainsFunc(a.client, func(ap netip.Prefix) bool {
			return ap.Bits() <= bp.Bits() && ap.Contains(bp.Addr())
		}) {
			return false
		}
	}
	return true
}

func subset[T comparable](small, big []T) bool {
	for _, x := range small {
		if !slices.Contains(big, x) {
			return false
		}
	}
	return true
}

// RouteWarnings compiles the http_routes of one entrypoint without their
// services and returns Router.WarningsOn: `proxynow validate` reports
// them.
func RouteWarnings(entrypoint string, routes []*config.HTTPRoute) (config.Diagnostics, error) {
	rs := make([]*Route, len(routes))
	for i, r := range routes {
		rs[i] = &Route{Config: r, Handler: http.NotFoundHandler()}
	}
	rt, err := NewRouter(rs)
	if err != nil {
		return nil, err
	}
	return rt.WarningsOn(entrypoint), nil
}
