package middleware

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// ip_allow answers 403 unless the client address is in one of the CIDRs;
// ip_deny answers 403 when it is. Addresses are compared unmapped: a
// v4-mapped client (::ffff:10.1.2.3, from a dual-stack socket) is 10.1.2.3,
// and a v4-mapped CIDR of 96 bits or more (::ffff:10.0.0.0/104) is the IPv4
// CIDR (10.0.0.0/8). As with netip.Prefix.Contains, an IPv6 CIDR never
// matches an IPv4 client, and zones are ignored. A client whose address is
// unknown (a Unix socket) is never in the CIDRs: ip_allow refuses it,
// ip_deny lets it through.
//
// With Depth > 0, ip_allow takes the address Depth entries from the right
// of X-Forwarded-For (all its lines read as one list, RFC 9110 §5.3), as
// Traefik's ipStrategy.depth does, instead of the resolved client: use it
// only behind exactly Depth-1 proxies of yours that each append to the
// header. A header with fewer entries, or an entry that is not an address,
// is refused. As in Traefik, whose forwarded-headers stage strips the
// header from untrusted peers before ipStrategy reads it, the header is
// read only from a peer in the entrypoint's trusted_proxies: from anyone
// else it is whatever the client chose, so the request is refused.
//
// The CIDRs are merged into sorted, disjoint ranges at load, so a lookup
// is a binary search that allocates nothing, however long the list.

func newIPAllow(m *config.Middleware, env Env) (Middleware, error) {
	f, err := buildIPFilter(m.IPAllow, true, env)
	if err != nil {
		return nil, fmt.Errorf("ip_allow: %w", err)
	}
	return f.wrap, nil
}

func newIPDeny(m *config.Middleware, env Env) (Middleware, error) {
	f, err := buildIPFilter(m.IPDeny, false, env)
	if err != nil {
		return nil, fmt.Errorf("ip_deny: %w", err)
	}
	return f.wrap, nil
}

type ipFilter struct {
	set      trafficCIDRSet
	allow    bool // ip_allow: 403 outside the set; ip_deny: 403 inside
	depth    int
	clientIP func(*http.Request) netip.Addr
	trusted  func(*http.Request) bool // nil: no peer's X-Forwarded-For is believed
}

func buildIPFilter(c *config.IPFilter, allow bool, env Env) (*ipFilter, error) {
	switch {
	case c == nil:
		return nil, errors.New("missing block")
	case len(c.CIDRs) == 0:
		return nil, errors.New("cidrs must not be empty")
	case c.Depth < 0:
		return nil, fmt.Errorf("depth must be at least 0, got %d", c.Depth)
	case c.Depth > 0 && !allow:
		return nil, errors.New("depth applies to ip_allow only")
	}
	set, err := newTrafficCIDRSet(c.CIDRs)
	if err != nil {
		return nil, err
	}
	return &ipFilter{set: set, allow: allow, depth: c.Depth, clientIP: env.ClientIP, trusted: env.ForwardedTrusted}, nil
}

func (f *ipFilter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a netip.Addr
		if f.depth > 0 {
			if f.trusted != nil && f.trusted(r) {
				a = trafficXFFAt(r.Header["X-Forwarded-For"], f.depth)
			}
		} else {
			a = f.clientIP(r)
		}
		if f.set.contains(a) != f.allow {
			trafficRefuse(w, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trafficXFFAt is the address depth entries from the right of the
// X-Forwarded-For lines (1 is the rightmost), or the zero Addr when there
// are fewer entries or that one is not an address. An entry may carry a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func trafficXFFAt(lines []string, depth int) netip.Addr {
	n := 0
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for {
			j := strings.LastIndexByte(v, ',')
			if n++; n == depth {
				return trafficParseXFFEntry(strings.TrimSpace(v[j+1:]))
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return netip.Addr{}
}

func trafficParseXFFEntry(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// trafficCIDRSet is a set of CIDRs as sorted, disjoint, non-adjacent
// ranges of addresses, one list per family.
type trafficCIDRSet struct {
	v4 []trafficRange
	v6 []trafficRange
}

// trafficRange is an inclusive range of addresses as 128-bit numbers
// (IPv4 addresses in the low 32 bits).
type trafficRange struct{ lo, hi trafficU128 }

type trafficU128 struct{ hi, lo uint64 }

func (a trafficU128) cmp(b trafficU128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a trafficU128) next() (trafficU128, bool) {
	if a.lo != ^uint64(0) {
		return trafficU128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return trafficU128{a.hi + 1, 0}, true
	}
	return a, false
}

func trafficU128Of(a netip.Addr) trafficU128 {
	if a.Is4() {
		b := a.As4()
		return trafficU128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return trafficU128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// trafficHostMask has the low n bits set, n <= 128.
func trafficHostMask(n int) trafficU128 {
	switch {
	case n >= 128:
		return trafficU128{^uint64(0), ^uint64(0)}
	case n > 64:
		return trafficU128{^uint64(0) >> (128 - n), ^uint64(0)}
	case n == 0:
		return trafficU128{}
	default:
		return trafficU128{0, ^uint64(0) >> (64 - n)}
	}
}

func newTrafficCIDRSet(prefixes []netip.Prefix) (trafficCIDRSet, error) {
	var s trafficCIDRSet
	for _, p := range prefixes {
		if !p.IsValid() {
			return s, fmt.Errorf("invalid CIDR %q", p)
		}
		p = p.Masked()
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		lo := trafficU128Of(p.Addr())
		m := trafficHostMask(p.Addr().BitLen() - p.Bits())
		r := trafficRange{lo, trafficU128{lo.hi | m.hi, lo.lo | m.lo}}
		if p.Addr().Is4() {
			s.v4 = append(s.v4, r)
		} else {
			s.v6 = append(s.v6, r)
		}
	}
	s.v4, s.v6 = trafficMerge(s.v4), trafficMerge(s.v6)
	return s, nil
}

// trafficMerge sorts ranges and joins the overlapping and adjacent ones.
func trafficMerge(rs []trafficRange) []trafficRange {
	slices.SortFunc(rs, func(a, b trafficRange) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if after, ok := last.hi.next(); !ok || r.lo.cmp(after) <= 0 {
				if r.hi.cmp(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func (s *trafficCIDRSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	var rs []trafficRange
	switch {
	case a.Is4():
		rs = s.v4
	case a.Is6():
		rs = s.v6
	default:
		return false
	}
	x := trafficU128Of(a)
	// The first range starting after x; x can only be in the one before.
	i, _ := slices.BinarySearchFunc(rs, x, func(r trafficRange, x trafficU128) int {
		if r.lo.cmp(x) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && x.cmp(rs[i-1].hi) <= 0
}
