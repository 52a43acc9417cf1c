package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// Deadlines after a request head that arrived in pieces. The guard puts
// timeouts.read_header on the socket while it holds an incomplete head
// (armHead) and takes it off before its next socket read (disarm); the
// server's own deadlines set in between must survive that, on connections
// the guard does not park (TLS, or parking off) as on parked ones.

// startH1ServerOn serves h with NewServer over TLS (handshake done first,
// as tlsmux does) or plaintext; it returns a dial function.
func startH1ServerOn(t *testing.T, useTLS bool, h http.Handler, o ServerOptions) (dial func() net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if useTLS {
		l = guardTLSListener{ln, &tls.Config{Certificates: []tls.Certificate{guardTestCert(t)}}}
	}
	o.Handler = h
	srv := NewServer(o)
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return func() net.Conn {
		t.Helper()
		var c net.Conn
		var err error
		if useTLS {
			c, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		} else {
			c, err = net.Dial("tcp", ln.Addr().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// writeSplit writes a request head in two pieces far enough apart that the
// server reads the first alone (and the guard holds it).
func writeSplit(t *testing.T, c net.Conn, first, rest string) {
	t.Helper()
	if _, err := io.WriteString(c, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(c, rest); err != nil {
		t.Fatal(err)
	}
}

// awaitClosed reads c until the server closes it; it fails if that takes
// longer than within.
func awaitClosed(t *testing.T, br *bufio.Reader, c net.Conn, within time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	rest, err := io.ReadAll(br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the connection is still open after %v (got %q)", what, within, rest)
	}
}

var bothTransports = []struct {
	name   string
	useTLS bool
}{{"plain", false}, {"tls", true}}

// TestH1ServerIdleTimeoutAfterSplitHead: a connection whose request head
// came in pieces is still closed at timeouts.idle once it sits idle
// after the response. Failed on main (85424f0): armHead marked the
// socket's deadline as the guard's (armed) but an unparked connection
// never records the server's deadlines, so the next read's disarm put
// "no deadline" in place of the idle deadline: the connection was held
// open for ever.
func TestH1ServerIdleTimeoutAfterSplitHead(t *testing.T) {
	for _, tc := range bothTransports {
		t.Run(tc.name, func(t *testing.T) {
			dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}), ServerOptions{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 300 * time.Millisecond})
			for _, first := range []bool{true, false} {
				c, br := dialRequest(t, dial, first)
				writeSplit(t, c, "GET / HTTP/1.1\r\nHo", "st: x\r\n\r\n")
				readOK(t, br, "ok")
				awaitClosed(t, br, c, 10*time.Second, "idle after a split head")
			}
		})
	}
}

// TestH1ServerBodyTimeoutAfterSplitHead: a request body that stops
// arriving still ends at timeouts.idle when its head came in pieces.
// Failed on main (85424f0), as above: the body read's deadline was
// replaced by none, and the handler's read waited for ever.
func TestH1ServerBodyTimeoutAfterSplitHead(t *testing.T) {
	for _, tc := range bothTransports {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan error, 1)
			dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				got <- err
			}), ServerOptions{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 300 * time.Millisecond})
			c := dial()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			writeSplit(t, c, "POST / HTTP/1.1\r\nHo", "st: x\r\nContent-Length: 10\r\n\r\nabc")
			select {
			case err := <-got:
				if err == nil {
					t.Fatal("a stalled body was read whole")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a stalled body after a split head was not cut by timeouts.idle")
			}
		})
	}
}

// readOK reads one response and wants 200 with body want.
func readOK(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || string(b) != want {
		t.Fatalf("got %d %q (%v), want 200 %q", res.StatusCode, b, err, want)
	}
}

// TestH1ServerSlowChunkedBodyAfterHeadDeadline: a chunked body that came
// in part with its head, and whose rest arrives after the header timeout,
// is read whole. The head's deadline is not cleared after the head
// (rdStale), and a body read that starts on buffered bytes sets none; a
// Content-Length read then returns what is buffered, but the chunked
// decoder goes on to the socket in the same read. Failed on main
// (85424f0): the read hit the stale header deadline.
func TestH1ServerSlowChunkedBodyAfterHeadDeadline(t *testing.T) {
	const rht = 150 * time.Millisecond
	for _, tc := range bothTransports {
		for _, idle := range []time.Duration{0, time.Minute} {
			t.Run(tc.name+"/idle="+idle.String(), func(t *testing.T) {
				dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, err := io.ReadAll(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					io.WriteString(w, "got "+string(b))
				}), ServerOptions{ReadHeaderTimeout: rht, IdleTimeout: idle})
				c := dial()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				for i := range 3 { // the first request, then keep-alive ones
					io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
					time.Sleep(3 * rht)
					io.WriteString(c, "cde\r\n0\r\n\r\n")
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 || string(b) != "got abcde" {
						t.Fatalf("request %d: %s %q", i, res.Status, b)
					}
				}
			})
		}
	}
}

// TestH1ServerPipelinedSplitHeadDuringWatch: a request head that begins
// while the previous request runs (the client-gone watcher reads its first
// byte, and the guard reads on for the rest of the head, putting the head
// timeout on the socket) and then stalls is still cut at
// timeouts.read_header. Failed on main (85424f0): stopWatch replaced the
// head's deadline, and the guard, which had marked the head as timed
// (headTimed), never put it back: the stalled head was bounded by the idle
// timeout only (for ever on a parked connection: TestHTTPPipelinedSplitHead
// in the server package).
func TestH1ServerPipelinedSplitHeadDuringWatch(t *testing.T) {
	for _, tc := range bothTransports {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					started <- struct{}{}
					<-release
				}
				io.WriteString(w, "ok")
			}), ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
			c := dial()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			<-started
			time.Sleep(100 * time.Millisecond) // the watcher reads by now
			io.WriteString(c, "GET / HTTP/1.1\r\nHo")
			time.Sleep(100 * time.Millisecond) // the guard holds the head
			close(release)
			readOK(t, br, "ok")
			awaitClosed(t, br, c, 10*time.Second, "stalled pipelined head")
		})
	}
}

// TestH1ServerResponseControllerReadDeadline: a read deadline a handler
// sets with http.ResponseController bounds its body reads, as in net/http,
// on the first request and on a keep-alive one.
func TestH1ServerResponseControllerReadDeadline(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Minute} {
		t.Run("idle="+idle.String(), func(t *testing.T) {
			got := make(chan error, 1)
			dial := startH1ServerOn(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					io.WriteString(w, "ok")
					return
				}
				if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
					got <- err
					return
				}
				_, err := io.ReadAll(r.Body)
				got <- err
			}), ServerOptions{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle})
			for _, first := range []bool{true, false} {
				c, _ := dialRequest(t, dial, first)
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
				select {
				case err := <-got:
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("first %v: body read ended with %v, want the handler's deadline", first, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("first %v: the handler's read deadline did not apply", first)
				}
			}
		})
	}
}

// TestH1ServerHandlerReadDeadlineEndsWithRequest: a read deadline a
// handler set does not outlive its request: the next request on the
// connection, sent after that deadline, is served (net/http resets the
// deadline between requests). Failed on main: without an idle timeout the
// wait for the next request kept the handler's deadline and the
// connection was dropped.
func TestH1ServerHandlerReadDeadlineEndsWithRequest(t *testing.T) {
	for _, rht := range []time.Duration{0, 5 * time.Second} {
		t.Run("read_header="+rht.String(), func(t *testing.T) {
			dial := startH1ServerOn(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/short" {
					http.NewResponseController(w).SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				}
				io.WriteString(w, "ok")
			}), ServerOptions{ReadHeaderTimeout: rht})
			c := dial()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
			readOK(t, br, "ok")
			time.Sleep(300 * time.Millisecond)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			readOK(t, br, "ok")
		})
	}
}

// TestH1ServerSlowlorisHead: a head sent a few bytes at a time, never
// ending, is cut at about timeouts.read_header however steadily it
// trickles, on the first request and on a keep-alive one, over TLS and
// plaintext; the answer, if any, is not a 200.
func TestH1ServerSlowlorisHead(t *testing.T) {
	const rht = 300 * time.Millisecond
	for _, tc := range bothTransports {
		t.Run(tc.name, func(t *testing.T) {
			dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}), ServerOptions{ReadHeaderTimeout: rht, IdleTimeout: time.Minute})
			for _, first := range []bool{true, false} {
				c, br := dialRequest(t, dial, first)
				closed := make(chan []byte, 1)
				go func() { b, _ := io.ReadAll(br); closed <- b }()
				start := time.Now()
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
			trickle:
				for i := 0; ; i++ {
					select {
					case b := <-closed:
						if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
							t.Fatalf("first %v: answer to a head never ended: %q", first, b)
						}
						break trickle
					case <-time.After(20 * time.Millisecond):
					}
					if d := time.Since(start); d > 20*rht {
						t.Fatalf("first %v: a trickling head still open after %v", first, d)
					}
					if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
						break // reset by the server
					}
				}
			}
		})
	}
}

// hookConn runs onSet, once, inside the first SetReadDeadline to a time
// after armAfter, before that deadline reaches the connection.
type hookConn struct {
	net.Conn
	armAfter time.Time
	onSet    func()
	fired    bool
}

func (c *hookConn) SetReadDeadline(t time.Time) error {
	if !c.fired && t.After(c.armAfter) {
		c.fired = true
		c.onSet()
	}
	return c.Conn.SetReadDeadline(t)
}

// TestGuardArmHeadRacesServerDeadline: the server's deadline set while
// the guard arms a held head's timeout (stopWatch waking the watcher's
// read, which is reading a pipelined head) is not overwritten by the
// head's. On main the watcher's read blocked for the whole head timeout
// instead (and the response of the request it watched waited as long).
func TestGuardArmHeadRacesServerDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const headTimeout = time.Minute
	hc := &hookConn{Conn: sc, armAfter: time.Now().Add(headTimeout / 2)}
	g := NewGuardListener(nil, GuardOptions{HeadTimeout: headTimeout}).Guard(hc).(*guardConn)
	g.s.state = stReqStart // as after a request
	// The wake-up stopWatch sets from its goroutine, here between the
	// guard's reading of the server's deadline and its own setting.
	hc.onSet = func() { g.SetReadDeadline(aLongTimeAgo) }
	g.SetReadDeadline(time.Time{}) // the watcher's
	io.WriteString(client, "GET / HTTP/1.1\r\nHo")
	done := make(chan error, 1)
	go func() {
		_, err := g.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want the server's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the head's timeout replaced the server's deadline set meanwhile")
	}
	if !hc.fired {
		t.Fatal("the guard did not arm the head timeout")
	}
}

// TestH1ServerHijackDeadlineAfterSplitHead: a handler that hijacks the
// connection of a request whose head came in pieces (WebSocket) gets the
// read deadlines it sets. Failed on main (85424f0) over TLS and unparked
// plaintext, like TestH1ServerIdleTimeoutAfterSplitHead: the guard's
// first read after the head replaced the hijacker's deadline by none.
func TestH1ServerHijackDeadlineAfterSplitHead(t *testing.T) {
	for _, tc := range bothTransports {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan error, 1)
			dial := startH1ServerOn(t, tc.useTLS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					got <- err
					return
				}
				defer c.Close()
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, err = brw.ReadByte()
				got <- err
			}), ServerOptions{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute})
			c := dial()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			writeSplit(t, c, "GET / HTTP/1.1\r\nHo", "st: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			select {
			case err := <-got:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("hijacked read ended with %v, want its deadline", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the hijacker's read deadline did not apply")
			}
		})
	}
}

// dialRequest connects with dial for a request that is the connection's
// first, or (first false) a keep-alive one after a GET answered "ok".
func dialRequest(t *testing.T, dial func() net.Conn, first bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := dial()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if !first {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readOK(t, br, "ok")
	}
	return c, br
}
