package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
)

// The HTTP/1 server's header values are substrings of the request's one
// head string (h1s_request.go). A rate_limit keyed by a header keeps each
// key's value for as long as its bucket lives (up to max_keys, 100000 by
// default): it must not keep the head the value came from. Here n
// requests, each with a distinct 3-byte key and a 512 KiB field beside it,
// pass the limiter; once they are done, their heads must be garbage.
//
// Fails on main: each bucket's key holds its whole head (n*512 KiB stay
// live). The fix belongs to l7/middleware (rlShard.get): clone a string
// key when a bucket is made for it (strings.Clone; once per new key, so a
// lookup of a known key still allocates nothing). A "host" key (r.Host, a
// substring of the head too, lower-cased without a copy) has the same
// defect.
func TestRateLimitKeyDoesNotKeepHead(t *testing.T) {
	for _, key := range []string{"header:X-Key", "host"} {
		t.Run(key, func(t *testing.T) { rateLimitKeepsHead(t, key) })
	}
}

func rateLimitKeepsHead(t *testing.T, key string) {
	const (
		n   = 32
		pad = 512 << 10
	)
	mw, err := middleware.Build(&config.Middleware{Name: "rl", Kind: config.MWRateLimit,
		RateLimit: &config.RateLimit{Average: 1 << 20, Burst: 1 << 20, Period: time.Second, Key: key}},
		middleware.Env{})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	_, addr := startH1Server(t, h, ServerOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	filler := strings.Repeat("p", pad)
	before := liveHeap()
	for i := range n {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h%03d\r\nX-Key: %03d\r\nX-Pad: %s\r\n\r\n", i, i, filler)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	// One more small request, so that nothing of the connection's own
	// (its writer's header, the last request) points at a padded head.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Key: end\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if grown, ok := heapGrowthWithin(before, n*pad/2, 0); !ok {
		t.Fatalf("the heap grew by %d KiB after %d requests with %d KiB heads: the limiter's keys keep their heads", grown>>10, n, pad>>10)
	}
	runtime.KeepAlive(h)
}
