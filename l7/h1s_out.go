package l7

import (
	"net"
	"time"
)

// h1out is the connection as the response writer's bufio.Writer writes to
// it. It keeps a write deadline on the socket so that a client that stops
// reading cannot hold the connection, its handler and the backend
// connection behind it for ever: a write that makes no progress for the
// stall timeout (timeouts.idle) fails, as nginx's send_timeout does. The
// deadline moves on lazily, only once it would move by more than a
// sixteenth of the timeout, so a busy connection updates it (a runtime
// timer change) every few seconds, not per write; a write may thus fail
// after between 15/16 of the timeout and the whole of it without progress.
//
// A whole-response deadline (timeouts.write) caps it. A deadline set by
// the handler (http.ResponseController) or by a hijacker replaces it until
// the next request.
type h1out struct {
	nc    net.Conn
	stall int64 // ns; 0: no stall timeout
	resp  int64 // whole-response deadline, Unix ns; 0: none
	dl    int64 // the deadline this writer put on the socket, Unix ns; 0: none known
	fixed bool  // someone else owns the write deadline
}

func (o *h1out) Write(p []byte) (int, error) {
	if o.stall > 0 && !o.fixed {
		o.arm()
	}
	return o.nc.Write(p)
}

func (o *h1out) arm() {
	want := time.Now().UnixNano() + o.stall
	if o.resp != 0 && o.resp < want {
		want = o.resp
	}
	if o.dl == 0 || want-o.dl > o.stall>>4 {
		if o.nc.SetWriteDeadline(time.Unix(0, want)) == nil {
			o.dl = want
		}
	}
}

// startResponse is called before each request's handler: d > 0 bounds
// the whole response (timeouts.write).
func (o *h1out) startResponse(d time.Duration) {
	switch {
	case d > 0:
		o.resp = time.Now().Add(d).UnixNano()
		o.dl = 0 // armed at the first write
		if o.stall <= 0 {
			o.nc.SetWriteDeadline(time.Unix(0, o.resp))
		}
	case o.fixed && o.stall <= 0:
		// The previous handler's own deadline ends with its request.
		o.nc.SetWriteDeadline(time.Time{})
		o.resp = 0
	default:
		o.resp = 0
		if o.fixed {
			o.dl = 0
		}
	}
	o.fixed = false
}

// setFixed puts t on the socket as the write deadline, which stays until
// startResponse (http.ResponseController, an error answer, a hijack).
func (o *h1out) setFixed(t time.Time) error {
	o.fixed = true
	return o.nc.SetWriteDeadline(t)
}
