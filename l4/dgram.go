package l4

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

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
	vec   [batchSize][]byte // the datagrams to write; msgs take runs of it
	segs  [batchSize]int    // datagrams in msgs[i]
	oob   [batchSize]gsoCmsg
	sys   sysBatch // the platform's recvmmsg headers
}

// gsoCmsg is room for a UDP_SEGMENT control message, aligned for its
// header.
type gsoCmsg struct {
	_ [0]uint64
	b [gsoControlSpace]byte
}

// newBatch makes a batch for a listening socket's reads, which report each
// datagram's sender in from.
func newBatch() *dgramBatch { return makeBatch(true) }

// newConnBatch makes a batch for a connected socket's reads: from is not
// filled in, and the kernel writes back no address.
func newConnBatch() *dgramBatch { return makeBatch(false) }

func makeBatch(peers bool) *dgramBatch {
	b := &dgramBatch{}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, headRoom+maxDatagram)
	}
	b.sys.init(b, peers)
	return b
}

// batches serve the flows' reply goroutines, which hold one only while a
// read's datagrams are handed on, so idle flows cost no buffer.
var batches = sync.Pool{New: func() any { return newConnBatch() }}

// payload is datagram i of b.
func (b *dgramBatch) payload(i int) []byte { return b.bufs[i][headRoom : headRoom+b.size[i]] }

// batchWriter writes a batch of messages on one socket: mmsgConn (sendmmsg)
// on Linux, x/net's ipv4 and ipv6 PacketConns (one datagram per call)
// elsewhere. All take x/net's Message type.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// dgramWriter writes batches of datagrams on one socket. Where the kernel
// takes UDP_SEGMENT (Linux), a run of equal-sized datagrams to one peer goes
// as one message the kernel splits (UDP GSO): one pass through the IP stack
// for the run instead of one per datagram. The relay's CPU is nearly all
// the kernel's per-datagram work (92% in perf, 64 B echo; the relay's own
// per-datagram code is under 1%), and GSO is the part of it user space can
// cut: under the bench's echo load (8 flows, 16 datagrams in flight each;
// runs of about 3 datagrams) it takes the relay from 9.4 to 5.9 µs of CPU
// per round trip at 64 B, and from 9.4 to 6.9 at 1200 B.
//
// What 1200 B adds is the kernel's too; the relay copies no payload
// itself. Each datagram is copied twice in the relay, into the batch by
// recvmmsg and out of it by sendmmsg, and a GSO message's payload goes
// into page fragments whose segments are freed later (skb_release_data,
// skb_defer_free_flush). perf, 1200 B against 64 B: the copies take 9.9%
// of the relay's CPU against 4.8%, the frees 7.8% against 4.3%. The bench's
// runs are also shorter at 1200 B (3.4 datagrams per message against 6.4),
// so each datagram bears more of a message's fixed cost. UDP_GRO on the
// relay's sockets would not help on loopback: the kernel coalesces only
// what was sent as one GSO message (8 datagrams of 1200 B sent one by one
// reach a UDP_GRO socket as 8 reads, one GSO message of them as one read
// of 9600 B), and clients and backends send one by one.
type dgramWriter struct {
	w   batchWriter
	gso atomic.Bool // cleared for good when the route's device refuses it (EIO)
}

// newDgramWriter picks the platform's writer for c's address family.
func newDgramWriter(c *net.UDPConn) *dgramWriter {
	a, ok := c.LocalAddr().(*net.UDPAddr)
	v6 := ok && a.IP.To4() == nil && a.IP.To16() != nil
	d := &dgramWriter{}
	if w, err := newBatchWriter(c, v6); err == nil {
		d.w = w
	} else if v6 {
		d.w = ipv6.NewPacketConn(c)
	} else {
		d.w = ipv4.NewPacketConn(c)
	}
	d.gso.Store(gsoSupported(c))
	return d
}

// GSO limits: a segment no larger than the IPv6 minimum MTU allows (the
// kernel refuses a segment over the path MTU, where a plain datagram would
// be fragmented), and a run within one IP packet's 64 KiB.
const (
	gsoMaxSegment = 1280 - 40 - 8
	gsoMaxRun     = 60000
)

// pack makes b.msgs from b.vec[:n], the datagrams to send to addr (nil on a
// connected socket), and returns them with b.segs, the datagrams in each.
func (d *dgramWriter) pack(b *dgramBatch, n int, addr net.Addr) ([]ipv4.Message, []int) {
	gso := d.gso.Load()
	ms := b.msgs[:0]
	for i := 0; i < n; {
		size, j := len(b.vec[i]), i+1
		if gso && size > 0 && size <= gsoMaxSegment {
			run := size
			for j < n && len(b.vec[j]) == size && run+size <= gsoMaxRun {
				run += size
				j++
			}
			// The kernel's last segment may be shorter (not empty).
			if j < n {
				if l := len(b.vec[j]); l > 0 && l < size && run+l <= gsoMaxRun {
					j++
				}
			}
		}
		m := ipv4.Message{Buffers: b.vec[i:j], Addr: addr}
		if j-i > 1 {
			m.OOB = gsoControl(b.oob[len(ms)].b[:], size)
		}
		b.segs[len(ms)] = j - i
		ms = append(ms, m)
		i = j
	}
	return ms, b.segs[:len(ms)]
}

// write sends ms, of which message i holds segs[i] datagrams, and calls
// failed for each datagram a write refused: it returns whether to go on
// with the next one. It returns the datagrams and bytes written. sendmmsg
// reports an error only for the first message of a call, so the loop ends
// after at most len(ms) calls that fail.
func (d *dgramWriter) write(ms []ipv4.Message, segs []int, flags int, failed func(error) bool) (sent, bytes int) {
	for len(ms) > 0 {
		n, err := d.w.WriteBatch(ms, flags)
		n = max(n, 0) // -1 with an error on Linux
		for i := range n {
			sent += segs[i]
			bytes += buffersLen(ms[i].Buffers)
		}
		ms, segs = ms[n:], segs[n:]
		if err == nil && n == 0 {
			err = errNoProgress
		}
		if err == nil || len(ms) == 0 {
			continue
		}
		if segs[0] > 1 && gsoRefused(err) {
			// The run goes again one datagram at a time; a device
			// without checksum offload (EIO) will never take GSO.
			if errors.Is(err, syscall.EIO) {
				d.gso.Store(false)
			}
			s, by, more := d.unbatch(ms[0], flags, failed)
			sent, bytes = sent+s, bytes+by
			if !more {
				return sent, bytes
			}
		} else {
			for range segs[0] {
				if !failed(err) {
					return sent, bytes
				}
			}
		}
		ms, segs = ms[1:], segs[1:]
	}
	return sent, bytes
}

// unbatch sends the datagrams of one GSO message one by one.
func (d *dgramWriter) unbatch(m ipv4.Message, flags int, failed func(error) bool) (sent, bytes int, more bool) {
	for i := range m.Buffers {
		one := []ipv4.Message{{Buffers: m.Buffers[i : i+1], Addr: m.Addr}}
		n, err := d.w.WriteBatch(one, flags)
		if err == nil && n == 1 {
			sent++
			bytes += len(m.Buffers[i])
			continue
		}
		if err == nil {
			err = errNoProgress
		}
		if !failed(err) {
			return sent, bytes, false
		}
	}
	return sent, bytes, true
}

func buffersLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// errNoProgress is a write that sent nothing and reported nothing.
var errNoProgress = &net.OpError{Op: "write", Net: "udp", Err: errZeroWrite{}}

type errZeroWrite struct{}

func (errZeroWrite) Error() string { return "write sent no datagram" }
