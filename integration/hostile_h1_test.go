//go:build linux

package integration

// Hostile HTTP/1 clients against the real binary: oversized heads and
// chunk lines, invalid Host values and request lines, written as raw
// bytes. Request smuggling and field syntax are TestRequestHygiene's.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawStatus writes raw to addr and reads one response. A connection
// closed with no response gives status 0.
func rawStatus(t testing.TB, addr, raw string) (status int, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	// Written in a goroutine: the proxy may answer and close before it
	// has read all of a large request.
	go func() { _, _ = io.WriteString(c, raw) }()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, true
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

// TestHostileH1BadRequests: every oversized or malformed head, and every
// chunk line past the limits, gets a 4xx/5xx of its own, the connection
// closed after it, and the backend sees no request.
func TestHostileH1BadRequests(t *testing.T) {
	be := startHTTPBackend(t, "be")
	p := hostileProxy(t, fmt.Sprintf(`backend "http://%s" {}`, be.addr))
	addr := p.addr("web")
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	head := func(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }
	manyHeaders := make([]string, 0, 10001)
	manyHeaders = append(manyHeaders, "GET / HTTP/1.1", "Host: h")
	for i := range 10000 {
		manyHeaders = append(manyHeaders, fmt.Sprintf("X-%d: v", i))
	}
	for i, tc := range []struct {
		name string
		raw  string
		want []int // any of these statuses
		// body: the head is well formed, the body not; the head may
		// have gone to the backend (requests stream), which then sees
		// a request cut off.
		body bool
	}{
		// Lengths and chunks out of range.
		{name: "cl-huge", raw: head("POST / HTTP/1.1", "Host: h", "Content-Length: 99999999999999999999999"), want: []int{400, 413}},
		{name: "chunk-size-line-long", raw: head("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked") + "1" + strings.Repeat("0", 70000) + "\r\n", want: []int{400}, body: true},
		{name: "chunk-ext-long", raw: head("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked") + "1;" + strings.Repeat("e", 70000) + "\r\nx\r\n0\r\n\r\n", want: []int{400}, body: true},
		// Oversized heads (max_header_bytes: 64 KiB by default).
		{name: "request-line-long", raw: head("GET /"+strings.Repeat("a", 70000)+" HTTP/1.1", "Host: h"), want: []int{414}},
		{name: "header-long", raw: head("GET / HTTP/1.1", "Host: h", "X-Long: "+strings.Repeat("a", 70000)), want: []int{431}},
		{name: "headers-many", raw: head(manyHeaders...), want: []int{431}},
		// Field syntax.
		{name: "space-in-name", raw: head("GET / HTTP/1.1", "Host: h", "X A: b"), want: []int{400}},
		{name: "host-space", raw: head("GET / HTTP/1.1", "Host: a b"), want: []int{400}},
		{name: "host-slash", raw: head("GET / HTTP/1.1", "Host: a/b"), want: []int{400}},
		{name: "host-at", raw: head("GET / HTTP/1.1", "Host: a@b"), want: []int{400}},
		{name: "host-nul", raw: head("GET / HTTP/1.1", "Host: a\x00b"), want: []int{400}},
		{name: "version-bad", raw: head("GET / HTTP/1.x", "Host: h"), want: []int{400, 505}},
		{name: "version-2", raw: head("GET / HTTP/2.0", "Host: h"), want: []int{400, 505}},
		{name: "method-bad", raw: head("G(T / HTTP/1.1", "Host: h"), want: []int{400}},
		{name: "target-no-slash", raw: head("GET x HTTP/1.1", "Host: h"), want: []int{400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has its own path: a request still on its way
			// from an earlier case cannot be taken for this one's.
			tag := fmt.Sprintf("/t%d", i)
			status, closed := rawStatus(t, addr, strings.Replace(tc.raw, " /", " "+tag, 1))
			if !slices.Contains(tc.want, status) {
				t.Errorf("status %d, want one of %v", status, tc.want)
			}
			if status != 0 && !closed {
				t.Errorf("status %d without Connection: close: the rest of the request would be read as the next", status)
			}
			time.Sleep(20 * time.Millisecond) // let anything forwarded arrive
			for _, r := range be.requests() {
				if strings.HasPrefix(r.URI, tag) && !tc.body {
					t.Errorf("backend saw %s %.40s", r.Method, r.URI)
				}
			}
		})
	}
}

// hostileProxy is a proxy whose entrypoint "web" has one-second header
// and idle timeouts and sends everything to a service of serviceBody;
// extra blocks follow.
func hostileProxy(t *testing.T, serviceBody string, extra ...string) *proc {
	t.Helper()
	return startProxy(t, hcl(`
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "1s"
    idle        = "1s"
  }
}
http_route "all" {
  entrypoints = ["web"]
  path_prefix = "/"
  service     = "svc"
}
service "svc" {
  %s
}
%s`, serviceBody, strings.Join(extra, "\n")))
}

// readAllTimed reads c until it ends and says when, from start.
func readAllTimed(c *net.TCPConn, start time.Time) (string, time.Duration) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, _ := io.ReadAll(c)
	return string(b), time.Since(start)
}

// TestHostileH1Slow: clients that trickle or stall are cut at the
// entrypoint's timeouts (1s here, 4s of slack for a loaded machine) with
// 408 where the proxy can still answer.
func TestHostileH1Slow(t *testing.T) {
	be := startHTTPBackend(t, "be")
	p := hostileProxy(t, fmt.Sprintf(`backend "http://%s" {}`, be.addr))
	addr := p.addr("web")
	const within = 5 * time.Second

	// Slowloris: a header line every 100ms, never the empty line.
	t.Run("head trickle", func(t *testing.T) {
		c := dialTCP(t, addr)
		start := time.Now()
		ended := make(chan struct{})
		var got string
		var took time.Duration
		go func() { got, took = readAllTimed(c, start); close(ended) }()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n")
		for i := 0; ; i++ {
			select {
			case <-ended:
			case <-time.After(100 * time.Millisecond):
				if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err == nil && time.Since(start) < 2*within {
					continue
				}
				<-ended
			}
			break
		}
		if took > within {
			t.Errorf("trickling head cut after %v, want about 1s", took)
		}
		if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("answer %q, want 408 or none", firstLine(got))
		}
	})

	// A body that stops: 10 bytes of 1000, then nothing.
	t.Run("body stall", func(t *testing.T) {
		c := dialTCP(t, addr)
		start := time.Now()
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789")
		got, took := readAllTimed(c, start)
		if took > within {
			t.Errorf("stalled body cut after %v, want about 1s", took)
		}
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("answer %q, want 408", firstLine(got))
		}
	})

	// 100,000 pipelined requests, no response read: the proxy answers
	// them in order until its writes stall, reads no further meanwhile,
	// and lets go at the idle timeout.
	t.Run("pipeline never read", func(t *testing.T) {
		// One request first, so that the backend connection the flood
		// uses is already in the pool (and counted) when it ends.
		if got, _ := readAllTimed(dialAndWrite(t, addr, "GET /warm HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), time.Now()); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
			t.Fatalf("warm-up request: %q", firstLine(got))
		}
		// 64 KiB answers: the socket buffers fill after some hundred
		// requests, not tens of thousands, however slow the machine.
		be.setHandler(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(make([]byte, 64<<10))
		})
		defer be.setHandler(nil)
		n0 := be.count.Load()
		w := watchRelease(t, p)
		c := dialTCP(t, addr)
		_ = c.SetReadBuffer(16 << 10)
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(3 * within))
			_, _ = io.WriteString(c, strings.Repeat("GET /p HTTP/1.1\r\nHost: h\r\n\r\n", 100_000))
		}()
		w.wait(within, "a pipelining client that reads nothing")
		t.Logf("it had served %d requests", be.count.Load()-n0)
	})

	// A client that asks for a large response and reads none of it: the
	// proxy lets go of the connection at the idle timeout, its memory no
	// more than socket and copy buffers.
	t.Run("response never read", func(t *testing.T) {
		be.setHandler(func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 64<<10)
			for range 1 << 10 { // 64 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		defer be.setHandler(nil)
		w := watchRelease(t, p)
		c := dialTCP(t, addr)
		_ = c.SetReadBuffer(16 << 10)
		_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
		// The proxy holds a client and a backend connection meanwhile.
		w.wait(within, "a client that reads nothing of a large response")
	})
}

// releaseWatch follows a proxy process while one hostile connection is
// served: its descriptors and its RSS.
type releaseWatch struct {
	t      testing.TB
	pid    int
	fds    int
	before int64
	rss    *rssSampler
	start  time.Time
}

// watchRelease starts watching p; the connection to watch is made next.
func watchRelease(t testing.TB, p *proc) *releaseWatch {
	t.Helper()
	w := &releaseWatch{t: t, pid: p.cmd.Process.Pid}
	w.fds = procFDCount(t, w.pid)
	var err error
	if w.before, err = rssBytes(w.pid); err != nil {
		t.Fatal(err)
	}
	w.rss = startRSSSampler(w.pid)
	w.start = time.Now()
	return w
}

// wait waits for the proxy to let go of the connection (3×within at
// most) and checks it did within, its RSS growing by 32 MiB at most.
func (w *releaseWatch) wait(within time.Duration, what string) {
	w.t.Helper()
	waitFDsBack(w.t, w.pid, w.fds, w.start.Add(3*within))
	took := time.Since(w.start)
	peak := w.rss.finish()
	if took > within {
		w.t.Errorf("proxy held %s for %v, want about 1s", what, took)
	}
	if peak-w.before > 32<<20 {
		w.t.Errorf("proxy RSS grew from %d MiB to %d MiB for %s", w.before>>20, peak>>20, what)
	}
	w.t.Logf("released after %v, RSS %d -> %d MiB", took.Round(time.Millisecond), w.before>>20, peak>>20)
}

// waitFDsBack waits until pid has more than fds descriptors open (it has
// accepted a connection), then until it is back to fds (it let go of
// it), or until the time given.
func waitFDsBack(t testing.TB, pid, fds int, until time.Time) {
	t.Helper()
	for accepted := false; time.Now().Before(until); time.Sleep(10 * time.Millisecond) {
		n := procFDCount(t, pid)
		if accepted && n <= fds {
			return
		}
		accepted = accepted || n > fds
	}
}

// dialAndWrite dials addr and writes raw.
func dialAndWrite(t testing.TB, addr, raw string) *net.TCPConn {
	t.Helper()
	c := dialTCP(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}
