package l7

import (
	"errors"
	"os"
	"time"
)

// Parking idle HTTP/1.1 connections.
//
// net/http keeps a goroutine, a 4 KiB read buffer and a 4 KiB write buffer
// for every open connection, idle keep-alive ones included: ~20 KiB each,
// where nginx and HAProxy keep well under 2 KiB. So the guard hands an idle
// connection back to its owner: when net/http waits for the next request on
// a plaintext connection and none arrives within GuardOptions.ParkAfter, the
// guard's Read reports io.EOF; net/http ends the connection as if the client
// had gone (it says nothing on the wire for an EOF between requests) and calls
// Close, which the guard turns into IdleParker.Park. The owner waits for the
// next request (package server: in one epoll waiter for all of a listener's
// parked connections, on Linux) and hands the connection to the HTTP
// server again as a new one. What a client sees does not change: the same
// socket, the same keep-alive connection, the same idle timeout (net/http's
// read deadline, passed to Park).
//
// TLS connections are not parked: the *tls.Conn would have to be kept, with
// its buffers, and it may hold decrypted bytes the socket does not show.

// IdleParker is implemented by a connection whose owner takes it back while
// it is idle between HTTP/1 requests (see GuardOptions.ParkAfter).
type IdleParker interface {
	// Park is called instead of Close once net/http is done with the
	// connection, which is idle at a request boundary with nothing read
	// ahead. deadline is the idle deadline net/http had set (zero: none):
	// the owner closes the connection if no request has begun by then.
	Park(deadline time.Time)
	// Resumed reports whether the connection was parked before: its next
	// bytes are a request, never the start of an HTTP/2 connection.
	Resumed() bool
}

// idleRead is Read at a request boundary: it waits for the next request
// until ParkAfter at most, and reports park when none began by then and
// net/http's own deadline is later.
func (g *guardConn) idleRead(p []byte) (n int, err error, park bool) {
	dl := g.rdl.Load()
	// The wait that noteIdleDeadline announced starts now: its clock
	// reading, microseconds old, spares this one.
	now := g.idleFrom
	if g.idleFrom = 0; now == 0 || !g.lazy.Load() {
		now = time.Now().UnixNano()
	}
	atN := now + int64(g.ln.parkAfter)
	if dl != 0 && dl <= atN {
		g.disarm()
		n, err = g.Conn.Read(p)
		return n, err, false
	}
	g.lazy.Store(false)
	// The park deadline of an earlier wait still on the socket is kept
	// when it is at most parkAfter/parkSlack sooner than this wait's: the
	// connection parks that much early, which changes nothing a client
	// sees, and a busy connection updates its timer every few requests,
	// not per request. rdl is later than at, so later than it too.
	if pa := g.parkAt.Load(); pa == 0 || pa > atN || atN-pa > int64(g.ln.parkAfter/parkSlack) {
		g.parkAt.Store(0)
		if err := g.Conn.SetReadDeadline(time.Unix(0, atN)); err != nil {
			n, err = g.Conn.Read(p)
			return n, err, false
		}
		g.parkAt.Store(atN)
	}
	g.armed.Store(true)
	// A plain Read: waiting for readability first and reading after (no
	// read that finds nothing) loses a request that arrives between the
	// last response and the wait — RawConn.Read resets the readiness the
	// edge-triggered poller reported — until the park deadline.
	n, err = g.Conn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && g.armed.Swap(false) {
		return 0, nil, true
	}
	return n, err, false
}

// parkSlack: a park deadline up to parkAfter/parkSlack early is kept.
const parkSlack = 8

// disarm puts net/http's read deadline on the socket in place of the park
// deadline (a read that continues a request begun within ParkAfter), or
// where noteIdleDeadline left it off.
func (g *guardConn) disarm() {
	armed := g.armed.Swap(false)
	if g.lazy.Swap(false) || armed {
		g.parkAt.Store(0)
		for {
			dl := g.rdl.Load()
			_ = g.Conn.SetReadDeadline(deadlineTime(dl))
			// The server's deadline set meanwhile, from another goroutine
			// (stopWatch), may have reached the socket before this one.
			if g.rdl.Load() == dl {
				break
			}
		}
	}
}

// SetReadDeadline records the server's deadline, which idleRead and
// armHead honour and disarm puts back. It is recorded on a connection that
// is not parked too: armHead's deadline is taken off by disarm there as
// well, which must put this one back, not none.
func (g *guardConn) SetReadDeadline(t time.Time) error {
	g.noteReadDeadline(t)
	g.parkAt.Store(0)
	return g.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (g *guardConn) SetDeadline(t time.Time) error {
	g.noteReadDeadline(t)
	g.parkAt.Store(0)
	return g.Conn.SetDeadline(t)
}

// noteReadDeadline records the server's read deadline where the guard may
// replace it on the socket: on a parked connection (idleRead) or under a
// head timeout (armHead).
func (g *guardConn) noteReadDeadline(t time.Time) {
	if g.parker == nil && g.ln.headTimeout <= 0 {
		return
	}
	var dl int64
	if !t.IsZero() {
		dl = t.UnixNano()
	}
	g.rdl.Store(dl)
	g.armed.Store(false)
	g.lazy.Store(false)
}

// armHead puts the head timeout on the socket for a request head that has
// begun and is held incomplete: from now, or the server's own deadline
// when that is sooner. disarm takes it off after the head.
func (g *guardConn) armHead() {
	g.lazy.Store(false)
	g.parkAt.Store(0)
	for {
		dl := g.rdl.Load()
		at := time.Now().Add(g.ln.headTimeout)
		if dl != 0 && dl < at.UnixNano() {
			at = time.Unix(0, dl)
		}
		if g.Conn.SetReadDeadline(at) == nil {
			g.armed.Store(true)
		}
		// A deadline the server set meanwhile from another goroutine
		// (stopWatch waking the watcher's read) may have reached the
		// socket before this one: it must not be overwritten.
		if g.rdl.Load() == dl {
			break
		}
	}
	g.headTimed = true
}

// noteIdleDeadline is SetReadDeadline for the wait at a request boundary,
// without the timer update: idleRead puts its own park deadline on the
// socket (or t, when t is sooner), and any other read puts t there first
// (disarm). It saves one deadline (a runtime timer update and two clock
// reads) per keep-alive request.
func (g *guardConn) noteIdleDeadline(now time.Time, d time.Duration) {
	t := now.Add(d)
	if g.parker == nil {
		_ = g.SetReadDeadline(t)
		return
	}
	g.noteReadDeadline(t)
	g.idleFrom = now.UnixNano()
	g.lazy.Store(true)
}

// parkDeadline is net/http's idle deadline as Park takes it.
func (g *guardConn) parkDeadline() time.Time { return deadlineTime(g.rdl.Load()) }

// deadlineTime is a recorded deadline (Unix ns, 0 for none) as a time.
func deadlineTime(dl int64) time.Time {
	if dl == 0 {
		return time.Time{}
	}
	return time.Unix(0, dl)
}
