package l7

import (
	"net/netip"
	"testing"
)

// X-Forwarded-For's value is cut out of the Forwarded element: it must be
// exactly the address's own text, whatever the address and host.
func TestForwardedNodeIsPeerString(t *testing.T) {
	peers := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("203.0.113.250"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("2001:db8::ff00:42:8329"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("::ffff:192.0.2.1"),
		{},
	}
	hosts := []string{"", "example.com", `we"ird;host]`, "[::1]:8080", "a;b"}
	for _, p := range peers {
		for _, h := range hosts {
			for _, proto := range []string{"http", "https"} {
				fwd := forwardedElem(p, proto, h)
				if got, want := forwardedNode(fwd, p), p.String(); got != want {
					t.Errorf("peer %v, host %q: node %q from %q, want %q", p, h, got, fwd, want)
				}
			}
		}
	}
}

// A zone is an interface name, which Linux lets hold ']' and ';' (only
// '/', ':' and white space are refused): X-Forwarded-For must still be
// the whole address, not the part before the first ']' of its zone.
func TestForwardedNodeZoneWithBracket(t *testing.T) {
	for _, s := range []string{"fe80::1%a]b", "fe80::1%]", "fe80::1%x;y", "::ffff:192.0.2.1%v]"} {
		p := netip.MustParseAddr(s)
		fwd := forwardedElem(p, "http", "example.com")
		if got, want := forwardedNode(fwd, p), p.String(); got != want {
			t.Errorf("peer %s: node %q from %q, want %q", s, got, fwd, want)
		}
	}
}
