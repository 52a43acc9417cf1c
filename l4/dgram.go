package l4

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one read takes from a socket, and so the
// most one write hands on. A read never waits to fill it: it takes what is
// queued. 16 keeps a batch at 1 MiB of (mostly untouched) buffers.
const batchSize = 16

// dgramBatch holds the datagrams of one batch read and the scratch space
// to write them on, so that the steady state allocates nothing. Payload i
// is bufs[i][headRoom:headRoom+size[i]]; the room in front takes a PROXY
// header without moving the payload.
type dgramBatch struct {
	n     int
	bufs  [batchSize][]byte
	size  [batchSize]int
	from  [batchSize]netip.AddrPort // the sender, from the listening socket
	flows [batchSize]*flow          // each datagram's flow (UDPServer.forwardBatch)
	msgs  [batchSize]ipv4.Message
	iov   [batchSize][1][]byte // msgs[i].Buffers
	sys   sysBatch             // the platform's recvmmsg headers
}

func newBatch() *dgramBatch {
	b := &dgramBatch{}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, headRoom+maxDatagram)
	}
	b.sys.init(b)
	return b
}

// batches serve the flows' reply goroutines, which hold one only while a
// read's datagrams are handed on, so idle flows cost no buffer.
var batches = sync.Pool{New: func() any { return newBatch() }}

// payload is datagram i of b.
func (b *dgramBatch) payload(i int) []byte { return b.bufs[i][headRoom : headRoom+b.size[i]] }

// batchWriter is the WriteBatch of x/net's ipv4 and ipv6 PacketConns:
// sendmmsg on Linux, one datagram per call elsewhere. Both take the same
// Message type.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchWriter picks the x/net wrapper of c's address family.
func newBatchWriter(c *net.UDPConn) batchWriter {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil && a.IP.To16() != nil {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// writeAll writes ms with w, and calls failed for each message a write
// refused, then goes on with the next; it returns the messages and payload
// bytes written. sendmmsg reports an error only for the first message of
// a call, so the loop ends after at most len(ms) calls that fail.
func writeAll(w batchWriter, ms []ipv4.Message, flags int, failed func(error) bool) (sent, bytes int) {
	for len(ms) > 0 {
		n, err := w.WriteBatch(ms, flags)
		n = max(n, 0) // -1 with an error on Linux
		for i := range n {
			bytes += len(ms[i].Buffers[0])
		}
		sent += n
		ms = ms[n:]
		if err == nil && n == 0 {
			err = errNoProgress
		}
		if err != nil && len(ms) > 0 {
			if !failed(err) {
				return sent, bytes
			}
			ms = ms[1:]
		}
	}
	return sent, bytes
}

// errNoProgress is a write that sent nothing and reported nothing.
var errNoProgress = &net.OpError{Op: "write", Net: "udp", Err: errZeroWrite{}}

type errZeroWrite struct{}

func (errZeroWrite) Error() string { return "write sent no datagram" }
