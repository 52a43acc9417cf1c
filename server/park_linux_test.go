package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
)

// parkRig parks the server side of loopback connections in a listener's
// parkedConns and collects what they hand back to its HTTP server's queue.
type parkRig struct {
	t      testing.TB
	ln     net.Listener
	l      *listener
	q      *l7.ConnQueue
	handed chan *parkable
}

func newParkRig(t testing.TB) *parkRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &parkRig{t: t, ln: ln, l: &listener{}, q: l7.NewConnQueue(), handed: make(chan *parkable, 4096)}
	r.l.http.Store(&httpServer{ln: r.q})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := r.q.Accept()
			if err != nil {
				return
			}
			r.handed <- c.(*parkable)
		}
	}()
	t.Cleanup(func() {
		r.l.parked.closeAll()
		r.q.Close()
		<-done
		for len(r.handed) > 0 {
			(<-r.handed).Close()
		}
		ln.Close()
	})
	return r
}

// pair returns a client connection and its server side, ready to park.
func (r *parkRig) pair() (net.Conn, *parkable) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	s, err := r.ln.Accept()
	if err != nil {
		r.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, &parkable{Conn: &l4.Conn{TCPConn: s.(*net.TCPConn)}, ctx: context.Background(), h: handoff{r.l}}
}

// parkN parks n connections with an idle deadline a minute away and
// returns their clients.
func (r *parkRig) parkN(n int) []net.Conn {
	r.t.Helper()
	clients := make([]net.Conn, n)
	for i := range clients {
		var p *parkable
		clients[i], p = r.pair()
		p.Park(time.Now().Add(time.Minute))
	}
	r.waitLen(n)
	return clients
}

// next returns the next connection handed back.
func (r *parkRig) next() *parkable {
	r.t.Helper()
	select {
	case p := <-r.handed:
		return p
	case <-time.After(10 * time.Second):
		r.t.Fatal("no parked connection was handed back in 10s")
		return nil
	}
}

// waitLen waits until n connections are parked.
func (r *parkRig) waitLen(n int) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.l.parked.len() != n {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d connections parked, want %d", r.l.parked.len(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantEOF reads from a client whose server side must be closed.
func wantEOF(t *testing.T, c net.Conn) {
	t.Helper()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want EOF", n, err)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestEpollParkNoLostWakeup: a request that arrives before, while or
// after its connection is parked wakes it (the registration is
// level-triggered: Go's edge-triggered poller may have taken the edge of
// a request that came first).
func TestEpollParkNoLostWakeup(t *testing.T) {
	r := newParkRig(t)
	for i := range 300 {
		c, p := r.pair()
		var wg sync.WaitGroup
		switch i % 3 {
		case 0:
			c.Write([]byte{byte(i)})
			p.Park(time.Now().Add(time.Minute))
		case 1:
			wg.Go(func() { c.Write([]byte{byte(i)}) })
			p.Park(time.Now().Add(time.Minute))
		case 2:
			p.Park(time.Now().Add(time.Minute))
			c.Write([]byte{byte(i)})
		}
		wg.Wait()
		got := r.next()
		if got != p || !got.resumed {
			t.Fatalf("round %d: another connection (or not resumed) was handed back", i)
		}
		var b [1]byte
		got.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(got, b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("round %d: the request's first byte: %v, %v", i, b, err)
		}
		got.Close()
		c.Close()
	}
	r.waitLen(0)
}

// TestEpollParkDeadline: a parked connection is closed at its idle
// deadline, not before, and a deadline sooner than the waiter's sleep
// wakes it; a connection parked without a deadline stays.
func TestEpollParkDeadline(t *testing.T) {
	r := newParkRig(t)
	cNone, pNone := r.pair()
	pNone.Park(time.Time{})
	cLong, pLong := r.pair()
	pLong.Park(time.Now().Add(time.Hour))
	r.waitLen(2)
	c, p := r.pair()
	start := time.Now()
	p.Park(start.Add(200 * time.Millisecond))
	wantEOF(t, c)
	if d := time.Since(start); d < 190*time.Millisecond || d > 10*time.Second {
		t.Fatalf("closed after %v, idle deadline 200ms", d)
	}
	r.waitLen(2)
	for _, c := range []net.Conn{cNone, cLong} {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a connection with a later deadline or none: %v", err)
		}
	}
	cLong.Write([]byte("x"))
	if r.next() != pLong {
		t.Fatal("another connection was handed back")
	}
	r.waitLen(1) // pNone
}

// TestEpollParkClientGone: a client that closes (FIN or RST) a parked
// connection gets its descriptor released at once, without a hand-back
// to the HTTP server; once none is parked, the epoll descriptor is closed
// too.
func TestEpollParkClientGone(t *testing.T) {
	r := newParkRig(t)
	base := openFDs(t)
	const n = 200
	clients := r.parkN(n)
	for i, c := range clients {
		if i%2 == 1 {
			c.(*net.TCPConn).SetLinger(0) // RST
		}
		c.Close()
	}
	r.waitLen(0)
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before the clients came and went", openFDs(t), base)
		}
		time.Sleep(time.Millisecond)
	}
	if len(r.handed) > 0 {
		t.Fatal("a closed connection was handed back")
	}
}

// TestEpollParkRequestThenClose: a request sent just before the client's
// FIN is handed back with it.
func TestEpollParkRequestThenClose(t *testing.T) {
	r := newParkRig(t)
	c, p := r.pair()
	c.Write([]byte("GET"))
	c.(*net.TCPConn).CloseWrite()
	p.Park(time.Now().Add(time.Minute))
	got := r.next()
	defer got.Close()
	if b, err := io.ReadAll(got); string(b) != "GET" || err != nil {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestEpollParkPrefix: a connection parked with bytes read ahead (a
// request begun) is handed back at once, though the socket has nothing.
func TestEpollParkPrefix(t *testing.T) {
	r := newParkRig(t)
	_, p := r.pair()
	p.Prefix = []byte("G")
	p.Park(time.Now().Add(time.Minute))
	if got := r.next(); got != p || string(got.Prefix) != "G" {
		t.Fatal("the connection was not handed back with its bytes")
	}
}

// TestEpollParkRefused: a connection epoll will not take (no room in
// fs.epoll.max_user_watches) waits in a goroutine of its own instead, is
// handed back with its request, and is closed by closeAll; no epoll
// descriptor is left open for nothing.
func TestEpollParkRefused(t *testing.T) {
	old := epollAdd
	epollAdd = func(int, int, *unix.EpollEvent) error { return unix.ENOSPC }
	defer func() { epollAdd = old }()
	r := newParkRig(t)
	base := openFDs(t)
	c, p := r.pair()
	p.Park(time.Now().Add(time.Minute))
	r.waitLen(1)
	// Polled: a descriptor another goroutine of the test binary opens
	// meanwhile (a previous test's cleanup) must not fail the test, nor may
	// one it closes after base was counted (which once left n at base);
	// one more left open for good still does.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := openFDs(t)
		if n <= base+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before: more than the connection's two", n, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Write([]byte("G"))
	if got := r.next(); got != p {
		t.Fatal("another connection was handed back")
	}
	var b [1]byte
	if _, err := io.ReadFull(p, b[:]); err != nil || b[0] != 'G' {
		t.Fatalf("the request's first byte: %q, %v", b, err)
	}
	c, p = r.pair()
	p.Park(time.Now().Add(time.Minute))
	r.waitLen(1)
	r.l.parked.closeAll()
	wantEOF(t, c)
}

// TestEpollParkCloseAll: closeAll closes every parked connection, stops
// the waiter's goroutine, and closes connections parked later at once.
func TestEpollParkCloseAll(t *testing.T) {
	r := newParkRig(t)
	ignore := goleak.IgnoreCurrent()
	const n = 100
	clients := r.parkN(n)
	r.l.parked.closeAll()
	for _, c := range clients {
		wantEOF(t, c)
	}
	if got := r.l.parked.len(); got != 0 {
		t.Fatalf("%d parked after closeAll", got)
	}
	goleak.VerifyNone(t, ignore)
	c, p := r.pair()
	p.Park(time.Now().Add(time.Minute))
	wantEOF(t, c)
	r.l.parked.closeAll() // again: returns
}

// TestEpollParkClosedElsewhere: a parked connection closed by another
// owner (l4 at the end of a shutdown) leaves the epoll set with its
// descriptor; dropping its record at its deadline does not touch the
// connection that got the same descriptor number since.
func TestEpollParkClosedElsewhere(t *testing.T) {
	r := newParkRig(t)
	_, p0 := r.pair()
	fd0 := sockFD(t, p0)
	p0.Park(time.Now().Add(300 * time.Millisecond))
	// The next accepted socket gets the lowest free number: p0's.
	c1, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	p0.Conn.Close()
	s1, err := r.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p1 := &parkable{Conn: &l4.Conn{TCPConn: s1.(*net.TCPConn)}, ctx: context.Background(), h: handoff{r.l}}
	if fd := sockFD(t, p1); fd != fd0 {
		t.Fatalf("the new connection has descriptor %d, not the closed one's %d: nothing to test", fd, fd0)
	}
	p1.Park(time.Now().Add(time.Hour))
	r.waitLen(2)
	r.waitLen(1) // p0's record dropped at its deadline
	c1.Write([]byte("x"))
	if r.next() != p1 {
		t.Fatal("another connection was handed back")
	}
}

// sockFD is p's descriptor number.
func sockFD(t *testing.T, p *parkable) int {
	t.Helper()
	raw, err := p.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.Control(func(fd uintptr) { n = int(fd) }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEpollParkMany: 2,000 parked connections woken in random order are
// each handed back with their own request.
func TestEpollParkMany(t *testing.T) {
	r := newParkRig(t)
	const n = 2000
	clients := make([]net.Conn, n)
	ids := make(map[*parkable]uint32, n)
	for i := range clients {
		var p *parkable
		clients[i], p = r.pair()
		ids[p] = uint32(i)
		p.Park(time.Now().Add(time.Minute))
	}
	r.waitLen(n)
	go func() {
		for _, i := range rand.Perm(n) {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(i))
			clients[i].Write(b[:])
		}
	}()
	seen := make(map[*parkable]bool, n)
	for range n {
		p := r.next()
		var b [4]byte
		p.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(p, b[:]); err != nil {
			t.Fatal(err)
		}
		id, ok := ids[p]
		if !ok || seen[p] || binary.BigEndian.Uint32(b[:]) != id {
			t.Fatalf("connection %d (known %v, seen %v) read request %d", id, ok, seen[p], binary.BigEndian.Uint32(b[:]))
		}
		seen[p] = true
		p.Close()
	}
	r.waitLen(0)
}

// TestHTTPParkedClientGone: clients that close parked connections (FIN,
// RST, or a request then FIN) get their descriptors released, and the
// server logs nothing for it.
func TestHTTPParkedClientGone(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		shortPark(t)
		logs := &syncBuf{}
		s, err := New(parse(t, fmt.Sprintf(httpRespond, "v1")), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		base := openFDs(t)
		const n = 150
		conns, _ := dialKeepAlive(t, s, n)
		waitParked(t, s, n)
		logged := len(logs.String())
		for i, c := range conns {
			switch i % 3 {
			case 1:
				c.(*net.TCPConn).SetLinger(0) // RST
			case 2:
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			}
			c.Close()
		}
		waitParked(t, s, 0)
		deadline := time.Now().Add(10 * time.Second)
		for openFDs(t) > base {
			if time.Now().After(deadline) {
				t.Fatalf("%d descriptors open, %d before the clients came and went", openFDs(t), base)
			}
			time.Sleep(time.Millisecond)
		}
		if l := logs.String()[logged:]; l != "" {
			t.Fatalf("the server logged:\n%s", l)
		}
	})
}

// BenchmarkParkWake: park a connection and wake it with a request byte,
// until it is handed back, with each waiter (run with -cpu 1 too: the
// epoll waiter must not hold the only P in a blocking epoll_wait).
func BenchmarkParkWake(b *testing.B) {
	for _, bc := range []struct {
		name   string
		epoll  bool
		others int // connections parked meanwhile
	}{{"epoll", true, 0}, {"epoll-1000-parked", true, 1000}, {"goroutine", false, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			old := parkEpoll
			parkEpoll = bc.epoll
			defer func() { parkEpoll = old }()
			r := newParkRig(b)
			if bc.others > 0 {
				r.parkN(bc.others)
			}
			c, p := r.pair()
			var buf [1]byte
			b.ReportAllocs()
			for b.Loop() {
				p.Park(time.Now().Add(time.Minute))
				if _, err := c.Write(buf[:]); err != nil {
					b.Fatal(err)
				}
				p = r.next()
				if _, err := p.Read(buf[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
