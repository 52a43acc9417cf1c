package l7

import (
	"net"
	"time"
)

// h1out is the connection as the response writer's bufio.Writer writes to
// it. It keeps a write deadline on the socket so that a client that stops
// reading cannot hold the connection, its handler and the backend
// connection behind it for ever: a write that makes no progress for the
// stall timeout (timeouts.idle) fails, as nginx's send_timeout does; the
// deadline moves on lazily (stallDeadline).
//
// A whole-response deadline (timeouts.write) caps it. A deadline set by
// the handler (http.ResponseController) or by a hijacker replaces it until
// the next request.
type h1out struct {
	nc    net.Conn
	d     stallDeadline
	resp  int64 // whole-response deadline, a monoNow reading; 0: none
	fixed bool  // someone else owns the write deadline
}

func (o *h1out) Write(p []byte) (int, error) {
	if o.d.stall <= 0 || o.fixed {
		return o.nc.Write(p)
	}
	return writeSteps(p, stallStep, o.writeStep)
}

func (o *h1out) writeStep(p []byte) (int, error) {
	o.d.arm(o.resp, o.nc.SetWriteDeadline)
	return o.nc.Write(p)
}

// startResponse is called before each request's handler: d > 0 bounds
// the whole response (timeouts.write).
func (o *h1out) startResponse(d time.Duration) {
	switch {
	case d > 0:
		o.resp = monoNow() + int64(d)
		o.d.dl = 0 // armed at the first write
		if o.d.stall <= 0 {
			o.nc.SetWriteDeadline(monoTime(o.resp))
		}
	case o.fixed && o.d.stall <= 0:
		// The previous handler's own deadline ends with its request.
		o.nc.SetWriteDeadline(time.Time{})
		o.resp = 0
	default:
		o.resp = 0
		if o.fixed {
			o.d.dl = 0
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
