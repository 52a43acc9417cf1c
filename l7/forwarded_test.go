package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/proxynow/proxynow/config"
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
				want := p.String()
				if !p.IsValid() {
					want = "unknown"
				}
				if got := forwardedNode(fwd, p); got != want {
					t.Errorf("peer %v, host %q: node %q from %q, want %q", p, h, got, fwd, want)
				}
			}
		}
	}
}

// The HTTP/1 server hands the Entry the peer it parsed once per connection:
// over IPv4 and IPv6 the backend sees the client's own address in
// X-Forwarded-For and Forwarded, request after request on one connection.
func TestForwardedPeerFromH1Server(t *testing.T) {
	_, be := backend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("Forwarded"))
	})
	svc := svcFor(be)
	px, _ := newTestProxy(t, svc)
	router := routeAll(t, &Route{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: px})
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", network)
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", network, err)
			continue
		}
		srv := NewServer(ServerOptions{Entrypoint: "web", Handler: NewEntry("web", router, nil, nil)})
		go srv.Serve(ln)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer := netip.MustParseAddrPort(c.LocalAddr().String()).Addr()
		want := peer.String() + "|" + forwardedElem(peer, "http", "a.test")
		br := bufio.NewReader(c)
		for i := range 3 {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s request %d: %v", network, i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Errorf("%s request %d: backend saw %q, want %q", network, i, body, want)
			}
		}
		c.Close()
		srv.Close()
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

// The Forwarded element's node is a valid RFC 7239 value whatever the
// peer: an unknown one is "unknown" (§6.3), and a zone's '"' or '\' is
// escaped inside the quoted IPv6 node.
func TestForwardedElemNode(t *testing.T) {
	for _, c := range []struct {
		peer netip.Addr
		want string
	}{
		{netip.Addr{}, "for=unknown;proto=http"},
		{netip.MustParseAddr("192.0.2.1"), "for=192.0.2.1;proto=http"},
		{netip.MustParseAddr("2001:db8::1"), `for="[2001:db8::1]";proto=http`},
		{netip.MustParseAddr("fe80::1%eth0"), `for="[fe80::1%eth0]";proto=http`},
		{netip.MustParseAddr(`fe80::1%a"b\c`), `for="[fe80::1%a\"b\\c]";proto=http`},
	} {
		if got := forwardedElem(c.peer, "http", ""); got != c.want {
			t.Errorf("peer %v: %s, want %s", c.peer, got, c.want)
		}
	}
}
