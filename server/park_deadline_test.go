package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowBackend answers /slow once release is closed (started gets a value
// as each /slow request arrives), anything else at once with "ok".
func slowBackend(t *testing.T) (addr string, started chan struct{}, release chan struct{}) {
	t.Helper()
	started, release = make(chan struct{}, 16), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return be.Listener.Addr().String(), started, release
}

const parkProxyConfig = `
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "300ms"
    idle        = "1m"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`

// readBody reads one response and returns its body; it wants 200.
func readBody(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	b, err := readAnswer(br)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHTTPPipelinedSplitHead: on a parkable connection, a request head
// that begins while the previous request is proxied (the client-gone
// watcher reads its first byte and the guard the rest) and then stalls is
// cut at timeouts.read_header. Failed on main (85424f0): the watcher's
// end replaced the head's deadline by none and the guard did not put it
// back (headTimed), nor the idle deadline (noteIdleDeadline leaves it off
// the socket): the connection was held for ever.
func TestHTTPPipelinedSplitHead(t *testing.T) {
	shortPark(t)
	addr, begun, release := slowBackend(t)
	s := started(t, fmt.Sprintf(parkProxyConfig, addr))
	c, br := dialWeb(t, s, 30*time.Second)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-begun
	time.Sleep(100 * time.Millisecond) // the watcher reads by now
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	time.Sleep(100 * time.Millisecond) // the guard holds the head
	close(release)
	if b := readBody(t, br); b != "ok" {
		t.Fatalf("body %q", b)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(br); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled pipelined head holds the connection (got %q)", rest)
	}
}

// TestHTTPProxyPooledOutboundMixed: through the whole stack (the HTTP/1
// server, parking, the proxy's pooled outbound requests), concurrent
// keep-alive clients send GET, HEAD and POST requests, some with an extra
// header, to a service whose backends are an HTTP/1 one (fast path), an
// h2c one (x/net's transport, which may hold a request) and a dead one
// (dial errors, retried), with 1xx answers, a backend that drops the
// connection of some requests (retried) and per-try timeouts on others;
// each client gets its own answer, made from its own request (run with
// -race: a reused outbound still held by a transport is a race).
func TestHTTPProxyPooledOutboundMixed(t *testing.T) {
	shortPark(t)
	var protos [3]atomic.Int64 // requests seen by HTTP/1 and HTTP/2 backends
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos[r.ProtoMajor].Add(1)
		q := r.URL.Query()
		if q.Get("drop") != "" && r.ProtoMajor == 1 {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close() // no answer: a GET is tried again elsewhere
				return
			}
		}
		if q.Get("stall") != "" && r.ProtoMajor == 1 {
			select { // past the per-try timeout: tried again elsewhere
			case <-r.Context().Done():
				return
			case <-time.After(3 * time.Second):
			}
		}
		if q.Get("early") != "" {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seq", r.Header.Get("X-Seq"))
		fmt.Fprintf(w, "%s|%s|%s|%s", r.URL.Path, r.Header.Get("X-Seq"), r.Header.Get("X-Odd"), b)
	})
	h1 := httptest.NewServer(echo)
	defer h1.Close()
	h2 := httptest.NewUnstartedServer(echo)
	h2.EnableHTTP2 = true
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Config.Protocols.SetHTTP1(true)
	h2.Start()
	defer h2.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "10s"
    idle        = "1m"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
  backend "h2c://%s" {}
  backend "http://127.0.0.1:1" {}
  retry {
    attempts        = 4
    per_try_timeout = "1s"
  }
}
`, h1.Listener.Addr(), h2.Listener.Addr()))
	url := "http://" + s.Addr("web").String()
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Go(func() {
			for i := range 60 {
				seq := fmt.Sprintf("%d-%d", g, i)
				path := "/p/" + seq
				query := ""
				switch i % 10 {
				case 3:
					query = "?drop=1"
				case 5:
					query = "?early=1"
				case 7:
					if g < 2 {
						query = "?stall=1"
					}
				}
				method, body, want := http.MethodGet, "", ""
				switch i % 4 {
				case 1:
					method = http.MethodHead
				case 2:
					if query == "" || query == "?early=1" {
						method, body = http.MethodPost, "body-"+seq
					}
				}
				req, _ := http.NewRequest(method, url+path+query, strings.NewReader(body))
				if body == "" {
					req.Body, req.ContentLength = nil, 0
				}
				req.Header.Set("X-Seq", seq)
				odd := ""
				if i%2 == 1 {
					odd = "odd"
					req.Header.Set("X-Odd", odd)
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("%s %s: %w", method, seq, err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if method != http.MethodHead {
					want = path + "|" + seq + "|" + odd + "|" + body
				}
				if err != nil || resp.StatusCode != 200 || string(b) != want || resp.Header.Get("X-Seq") != seq {
					errs <- fmt.Errorf("%s %s%s: %s %q (X-Seq %q, %v), want %q", method, seq, query, resp.Status, b, resp.Header.Get("X-Seq"), err, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if protos[1].Load() == 0 || protos[2].Load() == 0 {
		t.Errorf("backends saw %d HTTP/1 and %d HTTP/2 requests; want both", protos[1].Load(), protos[2].Load())
	}
}

// TestHTTPUpgradeAfterKeepAlive: a protocol switch (WebSocket-like)
// proxied on a connection that carried keep-alive requests before, its
// head split or whole, parked before or not: the tunnel outlives the
// header and idle deadlines of the requests before it (the head's
// deadline is no longer cleared after the head: Hijack must).
func TestHTTPUpgradeAfterKeepAlive(t *testing.T) {
	shortPark(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			io.WriteString(w, "ok")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, "echo "+line); err != nil {
				return
			}
		}
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "200ms"
    idle        = "400ms"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, be.Listener.Addr()))
	const up = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
	for _, tc := range []struct {
		name   string
		split  bool
		parked bool
	}{{"whole", false, false}, {"split", true, false}, {"parked", false, true}, {"parked-split", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := dialWeb(t, s, 30*time.Second)
			for range 2 {
				get(t, c, br)
			}
			if tc.parked {
				waitParked(t, s, 1)
			}
			if tc.split {
				io.WriteString(c, up[:20])
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, up[20:])
			} else {
				io.WriteString(c, up)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("answer %s", resp.Status)
			}
			for i := range 3 {
				time.Sleep(500 * time.Millisecond) // past both deadlines
				msg := fmt.Sprintf("hello %d\n", i)
				io.WriteString(c, msg)
				got, err := br.ReadString('\n')
				if err != nil || got != "echo "+msg {
					t.Fatalf("tunnel after %d pauses: %q, %v", i+1, got, err)
				}
			}
		})
	}
}

// TestHTTPLateBodiesAcrossParking: on one parkable keep-alive connection,
// requests whose bodies (Content-Length and chunked) arrive after the
// park delay and after timeouts.read_header, a request begun after the
// connection was parked, and pipelined requests split across the park
// delay, are all answered, in order, with their own bodies.
func TestHTTPLateBodiesAcrossParking(t *testing.T) {
	shortPark(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts {
    read_header = "400ms"
    idle        = "1m"
  }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, be.Listener.Addr()))
	c, br := dialWeb(t, s, 60*time.Second)
	expect := func(want string) {
		t.Helper()
		if b := readBody(t, br); b != want {
			t.Fatalf("body %q, want %q", b, want)
		}
	}
	late := 600 * time.Millisecond // past read_header and the park delay
	for i := range 2 {
		if i == 1 {
			waitParked(t, s, 1)
		}
		io.WriteString(c, "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
		time.Sleep(late)
		io.WriteString(c, "cdef")
		expect("/cl abcdef")
		io.WriteString(c, "POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
		time.Sleep(late)
		io.WriteString(c, "c\r\n2\r\nde\r\n0\r\n\r\n")
		expect("/te abcde")
		io.WriteString(c, "POST /hd HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
		time.Sleep(late)
		io.WriteString(c, "xyz")
		expect("/hd xyz")
		io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: x\r\nContent-Le")
		time.Sleep(50 * time.Millisecond) // well within read_header on a loaded machine
		io.WriteString(c, "ngth: 2\r\n\r\nok")
		expect("/p1 ")
		expect("/p2 ok")
	}
}

// TestHTTPClientGoneAfterHeadTimeout: a client that goes away while its
// keep-alive request (begun after the connection was parked, its head
// split or whole) waits on the backend past timeouts.read_header cancels
// the backend request: the watcher does not stop at the head's deadline
// left on the socket.
func TestHTTPClientGoneAfterHeadTimeout(t *testing.T) {
	shortPark(t)
	canceled := make(chan struct{}, 4)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			io.WriteString(w, "ok")
			return
		}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(parkProxyConfig, be.Listener.Addr()))
	for _, split := range []bool{false, true} {
		c, br := dialWeb(t, s, 30*time.Second)
		get(t, c, br)
		waitParked(t, s, 1)
		if split {
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHo")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "st: x\r\n\r\n")
		} else {
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		time.Sleep(time.Second) // past read_header (300ms)
		c.Close()
		select {
		case <-canceled:
		case <-time.After(15 * time.Second):
			t.Fatalf("split %v: the backend request was not canceled when the client went away", split)
		}
	}
}
