//go:build linux

package integration

// Hostile PROXY protocol headers from a trusted peer: lengths and lines
// that would make a careless reader wait or buffer without end.

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// v2Header is a PROXY v2 header (PROXY command, TCP over IPv4) whose
// length field says declared, followed by body.
func v2Header(declared uint16, body []byte) []byte {
	h := append(bytes.Clone(proxyproto.SIGV2), 0x21, 0x11)
	h = binary.BigEndian.AppendUint16(h, declared)
	return append(h, body...)
}

func TestHostileProxyProtocol(t *testing.T) {
	be, rec := recordingBackend(t)
	p := startProxy(t, hcl(`
entrypoint "pp" {
  address = "127.0.0.1:0"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
    timeout = "500ms"
  }
}
tcp_route "r" {
  entrypoints = ["pp"]
  service     = "s"
}
service "s" {
  backend %q {}
}
`, be.addr))
	addrs := []byte{192, 0, 2, 10, 198, 51, 100, 20, 0x9c, 0x40, 0x01, 0xbb}
	for _, tc := range []struct {
		name string
		send []byte
	}{
		// go-proxyproto reads at most 107 bytes looking for the CRLF.
		{"v1 without CRLF", []byte("PROXY TCP4 192.0.2.10 198.51.100.20 40000 443" + strings.Repeat(" ", 4000))},
		{"v1 bare LF", []byte("PROXY TCP4 192.0.2.10 198.51.100.20 40000 443\nhello")},
		{"v1 port out of range", []byte("PROXY TCP4 192.0.2.10 198.51.100.20 99999 443\r\nhello")},
		// The largest length v2 can declare, and 12 bytes of it sent:
		// the reader must give up at the timeout, not wait for the rest.
		{"v2 absurd length stalled", v2Header(0xffff, addrs)},
		// All 65,535 bytes, the TLVs garbage.
		{"v2 absurd length garbage TLVs", v2Header(0xffff, append(bytes.Clone(addrs), bytes.Repeat([]byte{0xee}, 0xffff-len(addrs))...))},
		{"v2 length shorter than the addresses", v2Header(4, addrs)},
		{"v2 bad version", append(append(bytes.Clone(proxyproto.SIGV2), 0x31, 0x11, 0, 12), addrs...)},
		{"v2 signature cut short then silence", proxyproto.SIGV2[:7]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n0 := len(rec.bytes())
			el, got := dialExpectClosed(t, p.addr("pp"), tc.send, 10*time.Second)
			if len(got) != 0 {
				t.Errorf("client got %q, want the connection closed", trunc(got))
			}
			// The header timeout is 500ms; slack for a loaded machine.
			if el > 4*time.Second {
				t.Errorf("connection closed after %v, want within the 500ms header timeout", el)
			}
			time.Sleep(100 * time.Millisecond) // let anything forwarded arrive
			if b := rec.bytes()[n0:]; len(b) != 0 {
				t.Errorf("backend received %q", trunc(b))
			}
		})
	}

	t.Run("still serving", func(t *testing.T) {
		c := dialTCP(t, p.addr("pp"))
		hdr := []byte("PROXY TCP4 192.0.2.10 198.51.100.20 40000 443\r\nhello")
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(ioTimeout)
		for !bytes.HasSuffix(rec.bytes(), []byte("hello")) {
			if time.Now().After(deadline) {
				t.Fatalf("a good header's payload never reached the backend: %q", trunc(rec.bytes()))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
