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
	"github.com/proxynow/proxynow/upstream"
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

// The HTTP/1 server hands the Entry the peer it parsed once per connection:
// over IPv4 and IPv6 the backend sees the client's own address in
// X-Forwarded-For and Forwarded, request after request on one connection.
func TestForwardedPeerFromH1Server(t *testing.T) {
	_, be := backend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("Forwarded"))
	})
	svc := svcFor(be)
	pool, err := upstream.NewPool(svc, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	px := NewProxy(svc, pool, nil)
	t.Cleanup(px.CloseIdleConnections)
	router, err := NewRouter([]*Route{{Config: &config.HTTPRoute{Name: "r", Service: svc.Name}, Handler: px}})
	if err != nil {
		t.Fatal(err)
	}
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
