package l7

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// Route is a compiled http_route: the config it came from and the handler
// (the service's, wrapped in the route's middlewares) that serves it.
// NewRouter reads a Route and never modifies it.
type Route struct {
	Config  *config.HTTPRoute
	Handler http.Handler
	// Upgrades says the handler may switch protocols (it proxies to
	// backends, which may answer an Upgrade with 101).
	Upgrades bool
}

// Router picks the route for a request. It is immutable once built and
// safe for concurrent use; Match allocates nothing.
//
// Order, highest first (issue 4):
//
//  1. Priority.
//  2. Host: a route's exact host, then its wildcard host, then routes
//     without hosts.
//  3. Path: the longest literal match; an exact `path` ranks above a
//     `path_prefix` of the same length; any literal path above a
//     `path_regex`; a `path_regex` above no path matcher.
//  4. The number of matchers: `methods` and `client_ip` count one each,
//     `headers` and `query` one per name.
//  5. Declaration order.
//
// A route with several hosts ranks by the host the request matched.
type Router struct {
	exact    map[string]*tier // "api.example.com"
	wildcard map[string]*tier // "*.example.com" under "example.com"
	any      *tier            // routes without hosts
	routes   []*matcher       // declaration order; for Warnings
}

// Host tiers, the second order key.
const (
	tierAny = iota
	tierWildcard
	tierExact
)

// tier holds the routes of one host (or of any host).
type tier struct {
	paths pathNode // path and path_prefix routes
	regex []entry  // path_regex routes, best first
	none  []entry  // routes without a path matcher, best first
	top   rank     // the best rank in the tier: a tier that cannot beat the current best is skipped
}

// entry is a route within one tier, ranked for that tier.
type entry struct {
	rank rank
	m    *matcher
}

// rank is the order key of a route in a tier; see Router.
type rank struct {
	priority int
	tier     int
	path     int // 0 none, 1 regex, 2+2*len(literal) (+1 when exact)
	matchers int
	index    int
}

// beats reports whether a ranks strictly above b.
func (a *rank) beats(b *rank) bool {
	switch {
	case a.priority != b.priority:
		return a.priority > b.priority
	case a.tier != b.tier:
		return a.tier > b.tier
	case a.path != b.path:
		return a.path > b.path
	case a.matchers != b.matchers:
		return a.matchers > b.matchers
	}
	return a.index < b.index
}

// matcher is a route's compiled matchers beyond host and literal path.
type matcher struct {
	route   *Route
	name    string
	hosts   []string // normalised; for Warnings
	rank    rank     // tier left at tierAny
	methods []string
	headers []pair
	query   []pair
	client  []netip.Prefix // unmapped: IPv4 prefixes for IPv4 clients
	re      *regexp.Regexp
}

type pair struct{ name, value string }

// NewRouter compiles routes. It returns an error, rather than panicking,
// for what config validation should already have refused: a route without
// config or handler, two path matchers, a bad path_regex or host.
func NewRouter(routes []*Route) (*Router, error) {
	rt := &Router{exact: map[string]*tier{}, wildcard: map[string]*tier{}, any: &tier{}}
	for i, r := range routes {
		m, err := compileRoute(r, i)
		if err != nil {
			return nil, err
		}
		rt.routes = append(rt.routes, m)
		if len(m.hosts) == 0 {
			rt.any.add(m, tierAny)
			continue
		}
		for _, h := range m.hosts {
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				rt.wildcard[rest] = addTo(rt.wildcard[rest], m, tierWildcard)
			} else {
				rt.exact[h] = addTo(rt.exact[h], m, tierExact)
			}
		}
	}
	rt.any.finish()
	for _, t := range rt.exact {
		t.finish()
	}
	for _, t := range rt.wildcard {
		t.finish()
	}
	return rt, nil
}

func compileRoute(r *Route, index int) (*matcher, error) {
	if r == nil || r.Config == nil {
		return nil, fmt.Errorf("http route %d: no config", index)
	}
	c := r.Config
	if r.Handler == nil {
		return nil, fmt.Errorf("http_route %q: no handler", c.Name)
	}
	m := &matcher{route: r, name: c.Name, rank: rank{priority: c.Priority, index: index}}
	paths := 0
	for _, p := range []string{c.Path, c.PathPrefix, c.PathRegex} {
		if p != "" {
			paths++
		}
	}
	if paths > 1 {
		return nil, fmt.Errorf("http_route %q: path, path_prefix and path_regex are exclusive", c.Name)
	}
	switch {
	case c.Path != "":
		m.rank.path = 3 + 2*len(c.Path)
	case c.PathPrefix != "":
		m.rank.path = 2 + 2*len(c.PathPrefix)
	case c.PathRegex != "":
		re, err := regexp.Compile(c.PathRegex)
		if err != nil {
			return nil, fmt.Errorf("http_route %q: path_regex: %w", c.Name, err)
		}
		m.re = re
		m.rank.path = 1
	}
	for _, h := range c.Hosts {
		h, err := normaliseHost(h)
		if err != nil {
			return nil, fmt.Errorf("http_route %q: %w", c.Name, err)
		}
		if !slices.Contains(m.hosts, h) {
			m.hosts = append(m.hosts, h)
		}
	}
	for _, meth := range c.Methods {
		if !slices.Contains(m.methods, meth) {
			m.methods = append(m.methods, meth)
		}
	}
	m.headers = pairs(c.Headers)
	m.query = pairs(c.Query)
	for _, p := range c.ClientIP {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		m.client = append(m.client, p.Masked())
	}
	m.rank.matchers = len(m.headers) + len(m.query)
	if len(m.methods) > 0 {
		m.rank.matchers++
	}
	if len(m.client) > 0 {
		m.rank.matchers++
	}
	return m, nil
}

func normaliseHost(h string) (string, error) {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	rest, wild := strings.CutPrefix(h, "*.")
	switch {
	case h == "":
		return "", errors.New("empty host")
	case strings.Contains(rest, "*") || wild && rest == "":
		return "", fmt.Errorf("host %q: a wildcard is only allowed as a whole first label (\"*.example.com\")", h)
	}
	return h, nil
}

func pairs(m map[string]string) []pair {
	var ps []pair
	for k, v := range m {
		ps = append(ps, pair{k, v})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	return ps
}

func addTo(t *tier, m *matcher, level int) *tier {
	if t == nil {
		t = &tier{}
	}
	t.add(m, level)
	return t
}

func (t *tier) add(m *matcher, level int) {
	e := entry{rank: m.rank, m: m}
	e.rank.tier = level
	c := m.route.Config
	switch {
	case c.Path != "":
		n := t.paths.node(c.Path)
		n.exact = append(n.exact, e)
	case c.PathPrefix != "":
		n := t.paths.node(c.PathPrefix)
		n.prefix = append(n.prefix, e)
	case m.re != nil:
		t.regex = append(t.regex, e)
	default:
		t.none = append(t.none, e)
	}
}

// finish sorts every candidate list best first, so that a walk stops at
// the first candidate that matches, or that cannot beat the best so far.
func (t *tier) finish() {
	t.top = rank{priority: math.MinInt}
	sort := func(es []entry) {
		sortEntries(es)
		if len(es) > 0 && es[0].rank.beats(&t.top) {
			t.top = es[0].rank
		}
	}
	sort(t.regex)
	sort(t.none)
	t.paths.each(func(n *pathNode) {
		sort(n.exact)
		sort(n.prefix)
	})
	t.paths.compact()
}

func sortEntries(es []entry) {
	slices.SortStableFunc(es, func(a, b entry) int {
		if a.rank.beats(&b.rank) {
			return -1
		}
		if b.rank.beats(&a.rank) {
			return 1
		}
		return 0
	})
}

// matchState is one lookup's state; it lives on Match's stack.
type matchState struct {
	r      *http.Request
	client netip.Addr
	best   *entry
}

// consider offers a best-first list of candidates: the first that beats
// the best so far and whose matchers accept the request becomes the best.
func (s *matchState) consider(es []entry) {
	for i := range es {
		e := &es[i]
		if s.best != nil && !e.rank.beats(&s.best.rank) {
			return
		}
		if e.m.matches(s.r, s.client) {
			s.best = e
			return
		}
	}
}

// lookup offers a tier's candidates, most specific path first.
func (s *matchState) lookup(t *tier, path string) {
	if t == nil || s.best != nil && !t.top.beats(&s.best.rank) {
		return
	}
	s.walk(&t.paths, path)
	s.consider(t.regex)
	s.consider(t.none)
}

// Match returns the route for r, or nil when none matches (404). host is
// the request's host in any case, with or without a port ("Example.COM.",
// "example.com:8080", "[::1]:443"); a trailing dot is ignored. client is
// the client address the caller resolved (PROXY protocol, trusted
// X-Forwarded-For); an IPv4-mapped IPv6 client matches IPv4 prefixes.
//
// The path matched is r.URL.Path as net/http decoded it, not cleaned
// again. Methods compare exactly: HEAD does not match a route that lists
// only GET (list both), and "get" is not "GET" (RFC 9110 section 9.1).
// Match allocates nothing.
func (rt *Router) Match(r *http.Request, host string, client netip.Addr) *Route {
	if m := rt.match(r, host, client); m != nil {
		return m.route
	}
	return nil
}

// match is Match's matcher: the route and its place in declaration order.
func (rt *Router) match(r *http.Request, host string, client netip.Addr) *matcher {
	s := matchState{r: r, client: client.Unmap()}
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	var buf [256]byte
	if name, ok := lowerHost(&buf, host); ok {
		s.lookup(rt.exact[string(name)], path)
		if i := indexDot(name); i > 0 {
			s.lookup(rt.wildcard[string(name[i+1:])], path)
		}
	}
	s.lookup(rt.any, path)
	if s.best == nil {
		return nil
	}
	return s.best.m
}

// lowerHost writes host into buf lower-cased, without a port, brackets or
// a trailing dot. ok is false for a host too long for any DNS name: it
// can only match routes without hosts.
func lowerHost(buf *[256]byte, host string) (name []byte, ok bool) {
	if strings.HasPrefix(host, "[") {
		if j := strings.IndexByte(host, ']'); j > 0 {
			host = host[1:j]
		}
	} else if i := strings.IndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i+1:], ':') < 0 {
		host = host[:i] // one colon: a port; more: a bare IPv6 address
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)], true
}

func indexDot(b []byte) int {
	for i, c := range b {
		if c == '.' {
			return i
		}
	}
	return -1
}

// matches checks everything but the host and a literal path, cheapest
// first.
func (m *matcher) matches(r *http.Request, client netip.Addr) bool {
	if len(m.methods) > 0 && !slices.Contains(m.methods, r.Method) {
		return false
	}
	if len(m.client) > 0 && !m.clientMatches(client) {
		return false
	}
	for _, h := range m.headers {
		// Any one of the values of a repeated header may match; a
		// comma-separated list in one field is one value.
		if !slices.Contains(r.Header[h.name], h.value) {
			return false
		}
	}
	if len(m.query) > 0 {
		raw := ""
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for _, q := range m.query {
			if !queryHas(raw, q.name, q.value) {
				return false
			}
		}
	}
	return m.re == nil || r.URL != nil && m.re.MatchString(r.URL.Path)
}

func (m *matcher) clientMatches(client netip.Addr) bool {
	for _, p := range m.client {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// queryHas reports whether the raw query has the pair name=value, decoded
// as url.ParseQuery decodes it ('+' is a space, %XX an escape), without
// allocating. As with url.ParseQuery, pairs with a ';' or a bad escape do
// not count, and a repeated name matches if any of its values does.
func queryHas(raw, name, value string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" || strings.IndexByte(kv, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if unescapedEquals(k, name) && unescapedEquals(v, value) {
			return true
		}
	}
	return false
}

// unescapedEquals reports whether the query-escaped s decodes to want.
func unescapedEquals(s, want string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
