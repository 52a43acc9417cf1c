package l7

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// parkableConn is a resumed parkable connection that counts the read
// deadlines put on it.
type parkableConn struct {
	net.Conn
	sets atomic.Int32
}

func (c *parkableConn) Park(time.Time) {}
func (c *parkableConn) Resumed() bool  { return true }
func (c *parkableConn) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// lazyParkPair is a guarded parkable server side (parking after
// parkAfter) and its client.
func lazyParkPair(t *testing.T, parkAfter time.Duration) (g *guardConn, pc *parkableConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	pc = &parkableConn{Conn: sc}
	gl := NewGuardListener(ln, GuardOptions{ParkAfter: parkAfter})
	g, ok := gl.Guard(pc).(*guardConn)
	if !ok || g.parker == nil {
		t.Fatal("the guard does not park the connection")
	}
	return g, pc, client
}

// serveHeads reads n request heads as the HTTP/1 server does between
// keep-alive requests: the wait (idleRead), then the idle deadline noted.
func serveHeads(t *testing.T, g *guardConn, client net.Conn, n int) {
	t.Helper()
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	buf := make([]byte, 512)
	for i := range n {
		if _, err := io.WriteString(client, req); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < len(req) {
			m, err := g.Read(buf)
			if err != nil {
				t.Fatalf("request %d: %v after %d bytes", i, err, got)
			}
			got += m
		}
		g.noteIdleDeadline(time.Now(), time.Hour) // later than parkAfter: the wait may park
	}
}

// TestGuardParkDeadlineKept: a busy keep-alive connection keeps the park
// deadline of an earlier wait while it is at most parkAfter/parkSlack
// sooner than the current one, instead of one timer update per request.
// On the code before, each of the 50 waits put its own deadline.
func TestGuardParkDeadlineKept(t *testing.T) {
	g, pc, client := lazyParkPair(t, time.Minute)
	serveHeads(t, g, client, 50)
	if n := pc.sets.Load(); n != 1 {
		t.Fatalf("%d read deadlines for 50 waits within parkAfter/%d, want 1", n, parkSlack)
	}
	// The server's own deadline put back replaces the park deadline, so
	// the next wait puts its own again.
	if err := g.SetReadDeadline(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	serveHeads(t, g, client, 5)
	if n := pc.sets.Load(); n != 3 {
		t.Fatalf("%d read deadlines, want 3 (the first wait's, the server's, the next wait's)", n)
	}
}

// TestGuardParkDeadlineKeptStillParks: with the deadline kept, a
// connection that goes quiet still parks: no sooner than parkAfter less
// the slack after its last request, and not much later than parkAfter.
func TestGuardParkDeadlineKeptStillParks(t *testing.T) {
	const parkAfter = 400 * time.Millisecond
	g, pc, client := lazyParkPair(t, parkAfter)
	serveHeads(t, g, client, 20)
	last := time.Now()
	n, err := g.Read(make([]byte, 512))
	quiet := time.Since(last)
	if n != 0 || err != io.EOF || !g.parked.Load() {
		t.Fatalf("Read after going quiet = %d, %v (parked %v), want 0, EOF, parked", n, err, g.parked.Load())
	}
	if min := parkAfter - parkAfter/parkSlack; quiet < min {
		t.Fatalf("parked %v after the last request, before %v", quiet, min)
	}
	if quiet > parkAfter+10*time.Second {
		t.Fatalf("parked %v after the last request, want about %v", quiet, parkAfter)
	}
	if sets := pc.sets.Load(); sets >= 20 {
		t.Fatalf("%d read deadlines for 20 quick waits: not kept", sets)
	}
}
