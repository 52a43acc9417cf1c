package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// An HTTP/2 backend connection keeps nothing of the HTTP/1 requests it
// carried. x/net's HPACK encoder keeps the strings it indexes (a short
// header value, the :path) in its dynamic table for as long as the
// connection lives; were they substrings of the client's head, as the
// HTTP/1 server parses them, each entry would keep a whole head alive. n
// requests with 256 KiB heads, each with its own short field and path, go
// over one h2c backend connection; the heap after is measured with that
// connection still open.
func TestH2BackendKeepsNoRequestHead(t *testing.T) {
	const (
		n   = 8
		pad = 256 << 10
	)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, h2 := backend(t, h2c.NewHandler(ok, &http2.Server{}).ServeHTTP)
	svc := svcFor(strings.Replace(h2, "http://", "h2c://", 1))
	px, _ := newTestProxy(t, svc)
	front := serveEntry(t, px, false)
	filler := strings.Repeat("p", pad)
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	before := liveHeap()
	for i := range n {
		fmt.Fprintf(c, "GET /path-%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nX-Small: s%d\r\n\r\n", i, filler, i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	c.Close() // the client connection ends; the backend connection stays
	if grown, ok := heapGrowthWithin(before, n*pad/2, 10*time.Second); !ok {
		t.Fatalf("the heap grew by %d KiB after %d requests with %d KiB heads to an HTTP/2 backend: its connection keeps them", grown>>10, n, pad>>10)
	}
}
