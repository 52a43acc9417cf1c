package l7

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestH1TransportExtraBytes: a backend that sends more than the framing
// says (bytes after a Content-Length body, a body after the answer to a
// HEAD) must not have them taken for the answer to the next request on
// the connection: each request gets the answer made for it.
func TestH1TransportExtraBytes(t *testing.T) {
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			path := strings.Fields(h)[1]
			body := "for " + path
			if strings.HasPrefix(h, "HEAD ") {
				// The body a HEAD answer must not have, in the same write.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHTTP/1.1 200")
				continue
			}
			// The body, then a forged answer behind it, in one write.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+
				"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	for i, method := range []string{"GET", "GET", "HEAD", "GET", "HEAD", "HEAD", "GET"} {
		path := "/r" + strconv.Itoa(i)
		resp, body, err := h1Get(t, tr, method, path, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		want := "for " + path
		if method == "HEAD" {
			want = ""
		}
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%s %s: %d %q, want 200 %q", method, path, resp.StatusCode, body, want)
		}
	}
}
