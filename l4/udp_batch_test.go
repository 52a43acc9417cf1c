package l4

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/ipv4"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// burst has each client send rounds windows of window datagrams
// ("<client> <seq>") without waiting, then read the window's replies, and
// checks that each came back once, in order. Windows keep what is in
// flight within default socket buffers, so nothing is lost on loopback.
func burst(t *testing.T, addr string, clients, rounds, window int, check func(c *net.UDPConn, sent, got []byte) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		c := udpClient(t, addr)
		wg.Go(func() {
			buf := make([]byte, 2048)
			seq := 0
			for range rounds {
				for k := range window {
					if _, err := c.Write(fmt.Appendf(nil, "%d %d", i, seq+k)); err != nil {
						errs <- err
						return
					}
				}
				for k := range window {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("client %d: datagram %d: %w", i, seq+k, err)
						return
					}
					if err := check(c, fmt.Appendf(nil, "%d %d", i, seq+k), buf[:n]); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
				}
				seq += window
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUDPBatchBurst: bursts from several clients at once reach the backend
// and come back whole, in order per flow, and the counters and the access
// log count every datagram and byte exactly.
func TestUDPBatchBurst(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var out bytes.Buffer
	log := accesslog.New(&out, accesslog.Options{})
	be := udpEcho(t, same)
	s := &UDPServer{Entrypoint: "e", Route: "r", Service: "svc", Pool: pool(t, be), IdleTimeout: time.Minute,
		Metrics: m.UDP("e", "r", "svc"), AccessLog: accesslog.NewSwitch(log)}
	addr := startUDP(t, s)
	const clients, rounds, window = 6, 8, 24
	var payload sync.Map // bytes per client
	burst(t, addr, clients, rounds, window, func(c *net.UDPConn, sent, got []byte) error {
		if !bytes.Equal(sent, got) {
			return fmt.Errorf("got %q, want %q (lost, duplicated or reordered)", got, sent)
		}
		v, _ := payload.LoadOrStore(c.LocalAddr().String(), new(int))
		*v.(*int) += len(got)
		return nil
	})
	if n := s.Flows(); n != clients {
		t.Errorf("Flows = %d, want %d", n, clients)
	}
	// Close logs every flow, and waits for the flows' goroutines: a reply
	// is counted as sent after its write, which the client may see first.
	s.Close()
	labels := []string{"e", "r", "svc"}
	const total = clients * rounds * window
	if v := testutil.ToFloat64(m.dgramsIn.WithLabelValues(labels...)); v != total {
		t.Errorf("datagrams received %v, want %d", v, total)
	}
	if v := testutil.ToFloat64(m.dgramsOut.WithLabelValues(labels...)); v != total {
		t.Errorf("datagrams sent %v, want %d", v, total)
	}
	if s.Dropped() != 0 {
		t.Errorf("Dropped = %d", s.Dropped())
	}
	if err := log.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != clients {
		t.Fatalf("%d access log lines, want %d: %s", len(lines), clients, out.String())
	}
	for _, l := range lines {
		var e struct {
			Client   string `json:"client"`
			BytesIn  int    `json:"bytes_in"`
			BytesOut int    `json:"bytes_out"`
		}
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		v, ok := payload.Load(e.Client)
		if !ok || e.BytesIn != *v.(*int) || e.BytesOut != *v.(*int) {
			t.Errorf("access log line %s: want bytes_in and bytes_out as the client counted", l)
		}
	}
}

// TestUDPBatchProxyProtocol: with batching, every datagram of every flow
// still carries its own flow's PROXY v2 header.
func TestUDPBatchProxyProtocol(t *testing.T) {
	be := udpEcho(t, func(b []byte, _ netip.AddrPort) []byte {
		h, payload, err := proxyproto.ParseUDPDatagram(b)
		if err != nil {
			return []byte("error: " + err.Error())
		}
		return fmt.Appendf(nil, "%s|%s", h.SourceAddr, payload)
	})
	addr := startUDP(t, &UDPServer{Pool: pool(t, be), ProxyProtocol: true})
	burst(t, addr, 4, 4, 24, func(c *net.UDPConn, sent, got []byte) error {
		if want := c.LocalAddr().String() + "|" + string(sent); string(got) != want {
			return fmt.Errorf("backend saw %q, want %q", got, want)
		}
		return nil
	})
}

// TestUDPBatchIPv6: an IPv6 listener relays to an IPv6 backend and back.
func TestUDPBatchIPv6(t *testing.T) {
	lo6 := &net.UDPAddr{IP: net.IPv6loopback}
	bpc, err := net.ListenUDP("udp6", lo6)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := bpc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			bpc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { bpc.Close(); <-done })
	pc, err := net.ListenUDP("udp6", lo6)
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPServer{Pool: pool(t, bpc.LocalAddr().String()), ProxyProtocol: false}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve = %v", err)
		}
	})
	burst(t, pc.LocalAddr().String(), 3, 4, 24, func(_ *net.UDPConn, sent, got []byte) error {
		if !bytes.Equal(sent, got) {
			return fmt.Errorf("got %q, want %q", got, sent)
		}
		return nil
	})
}

// TestRecvBatchTakesWhatIsQueued: one read takes every queued datagram up
// to batchSize (one where there is no recvmmsg), with its sender, and
// does not wait for more.
func TestRecvBatchTakesWhatIsQueued(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := udpClient(t, pc.LocalAddr().String())
	const sent = batchSize + 3
	for i := range sent {
		c.Write(bytes.Repeat([]byte{byte(i)}, i))
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch()
	read := func() (int, error) {
		var rerr error
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		err := rc.Read(func(fd uintptr) bool {
			rerr = recvBatch(fd, b)
			return rerr != syscall.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		return b.n, err
	}
	want := batchSize
	if runtime.GOOS != "linux" {
		want = 1
	}
	got := 0
	for got < sent {
		n, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 && n != want {
			t.Errorf("first read took %d datagrams, want %d", n, want)
		}
		for i := range n {
			if p := b.payload(i); len(p) != got || !bytes.Equal(p, bytes.Repeat([]byte{byte(got)}, got)) {
				t.Fatalf("datagram %d: got %d bytes %x", got, len(p), p)
			}
			if b.from[i].String() != c.LocalAddr().String() {
				t.Fatalf("from %v, want %v", b.from[i], c.LocalAddr())
			}
			got++
		}
	}
	// Nothing is queued: a read waits, and ends at its deadline.
	pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := rc.Read(func(fd uintptr) bool { return recvBatch(fd, b) != syscall.EAGAIN }); !errors.Is(err, syscall.ETIMEDOUT) && !isTimeout(err) {
		t.Fatalf("read with nothing queued = %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPackRuns: equal-sized datagrams up to the GSO limits share a message
// (a shorter one may end it); without GSO each goes alone.
func TestPackRuns(t *testing.T) {
	sizes := func(ns ...int) *dgramBatch {
		b := &dgramBatch{}
		for i, n := range ns {
			b.vec[i] = make([]byte, n)
		}
		b.n = len(ns)
		return b
	}
	for _, tc := range []struct {
		in   []int
		want []int // datagrams per message with GSO
	}{
		{[]int{100, 100, 100}, []int{3}},
		{[]int{100, 100, 50, 100}, []int{3, 1}},
		{[]int{100, 200, 200, 0, 0}, []int{1, 2, 1, 1}},
		{[]int{1300, 1300}, []int{1, 1}}, // over gsoMaxSegment
		{[]int{1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200}, []int{16}},
		{[]int{1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232, 1232}, []int{16}},
	} {
		b := sizes(tc.in...)
		d := &dgramWriter{}
		d.gso.Store(true)
		ms, segs := d.pack(b, b.n, nil)
		if fmt.Sprint(segs) != fmt.Sprint(tc.want) || len(ms) != len(segs) {
			t.Errorf("%v: runs %v, want %v", tc.in, segs, tc.want)
		}
		for i, m := range ms {
			if (segs[i] > 1) != (m.OOB != nil) {
				t.Errorf("%v: message %d of %d datagrams has control %x", tc.in, i, segs[i], m.OOB)
			}
		}
		d.gso.Store(false)
		if _, segs := d.pack(b, b.n, nil); len(segs) != b.n {
			t.Errorf("%v without GSO: %d messages, want %d", tc.in, len(segs), b.n)
		}
	}
}

// refusingWriter refuses every message with control data with err, and
// records the datagrams it is given otherwise.
type refusingWriter struct {
	err  error
	got  [][]byte
	gsos int
}

func (w *refusingWriter) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	for i, m := range ms {
		if m.OOB != nil {
			w.gsos++
			if i == 0 {
				return -1, w.err
			}
			return i, nil
		}
		w.got = append(w.got, m.Buffers[0])
	}
	return len(ms), nil
}

// TestGSORefusedGoesOneByOne: a run the kernel refuses as GSO is sent one
// datagram at a time, nothing lost or counted twice; EIO turns GSO off.
func TestGSORefusedGoesOneByOne(t *testing.T) {
	for _, tc := range []struct {
		err     error
		gsoKept bool
	}{{syscall.EIO, false}, {syscall.EINVAL, true}} {
		w := &refusingWriter{err: tc.err}
		d := &dgramWriter{w: w}
		d.gso.Store(true)
		b := &dgramBatch{}
		sizes := []int{10, 10, 10, 7, 3}
		for i, n := range sizes {
			b.vec[i] = bytes.Repeat([]byte{byte(i)}, n)
		}
		ms, segs := d.pack(b, len(sizes), nil)
		failed := 0
		sent, n := d.write(ms, segs, 0, func(error) bool { failed++; return true })
		if sent != len(sizes) || n != 40 || failed != 0 || len(w.got) != len(sizes) || w.gsos != 1 {
			t.Errorf("%v: sent %d (%d bytes, %d failed), writer got %d, %d GSO tries", tc.err, sent, n, failed, len(w.got), w.gsos)
		}
		for i, g := range w.got {
			if !bytes.Equal(g, b.vec[i]) {
				t.Errorf("%v: datagram %d is %x, want %x", tc.err, i, g, b.vec[i])
			}
		}
		if d.gso.Load() != tc.gsoKept {
			t.Errorf("%v: GSO on = %v, want %v", tc.err, d.gso.Load(), tc.gsoKept)
		}
	}
}

// TestGSOWriteArrivesAsDatagrams: a GSO write reaches the peer as the
// separate datagrams it was made of (on Linux; one by one elsewhere).
func TestGSOWriteArrivesAsDatagrams(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx := udpClient(t, rx.LocalAddr().String())
	d := newDgramWriter(tx)
	b := newBatch()
	const n = 10
	for i := range n {
		size := 1000
		if i == n-1 {
			size = 300
		}
		b.vec[i] = bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint16(b.vec[i], uint16(i))
	}
	ms, segs := d.pack(b, n, nil)
	if runtime.GOOS == "linux" && d.gso.Load() && len(ms) != 1 {
		t.Fatalf("%d messages for one run", len(ms))
	}
	if sent, _ := d.write(ms, segs, 0, func(err error) bool { t.Error(err); return true }); sent != n {
		t.Fatalf("sent %d of %d", sent, n)
	}
	buf := make([]byte, 65536)
	for i := range n {
		rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := rx.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:k], b.vec[i]) {
			t.Fatalf("datagram %d: %d bytes starting %x, want %d bytes", i, k, buf[:min(k, 4)], len(b.vec[i]))
		}
	}
}

// TestUDPRelayAllocs: the steady state of the relay (both directions, a
// flow open) allocates nothing per datagram.
func TestUDPRelayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random, and so allocates")
	}
	addr := startUDP(t, &UDPServer{Pool: pool(t, udpEcho(t, same)), IdleTimeout: time.Minute})
	c := udpClient(t, addr)
	msg, buf := make([]byte, 64), make([]byte, 2048)
	roundTrip(t, c, msg) // opens the flow
	c.SetReadDeadline(time.Now().Add(time.Minute))
	allocs := testing.AllocsPerRun(2000, func() {
		c.Write(msg)
		c.Read(buf)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
}

// TestUDPBatchDualStack: an IPv6 socket (as ":53" listens on Linux) sees
// IPv4 clients as v4-mapped addresses; replies, in batches and GSO runs,
// reach them. The socket is bound to the v4-mapped loopback address to stay
// on loopback.
func TestUDPBatchDualStack(t *testing.T) {
	pc, err := mappedLoopback()
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	s := &UDPServer{Pool: pool(t, udpEcho(t, same)), ProxyProtocol: false}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve = %v", err)
		}
	})
	port := pc.LocalAddr().(*net.UDPAddr).Port
	burst(t, fmt.Sprintf("127.0.0.1:%d", port), 3, 4, 24, func(_ *net.UDPConn, sent, got []byte) error {
		if !bytes.Equal(sent, got) {
			return fmt.Errorf("got %q, want %q", got, sent)
		}
		return nil
	})
	s.mu.RLock()
	defer s.mu.RUnlock()
	for client := range s.flows {
		if !client.Addr().Is4In6() {
			t.Errorf("client %v: want a v4-mapped address on an IPv6 socket", client)
		}
	}
}

// mappedLoopback is an IPv6 UDP socket bound to ::ffff:127.0.0.1 (the net
// package would make that address an IPv4 socket).
func mappedLoopback() (*net.UDPConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	sa := &syscall.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "udp6")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// stuckWriter is a socket whose send buffer is full.
type stuckWriter struct{ calls int }

func (w *stuckWriter) WriteBatch([]ipv4.Message, int) (int, error) {
	w.calls++
	return -1, &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmmsg", syscall.EAGAIN)}
}

// TestForwardBatchFullBufferDropsOnlyThatFlow: a backend socket that cannot
// take more (EAGAIN; writes toward backends do not wait) costs its own
// flow's datagrams, counted as dropped, and holds back no other flow's;
// the flow stays open.
func TestForwardBatchFullBufferDropsOnlyThatFlow(t *testing.T) {
	slow, fast := &stuckWriter{}, &refusingWriter{}
	a, c := netip.MustParseAddrPort("127.0.0.1:1001"), netip.MustParseAddrPort("127.0.0.1:1002")
	fa := &flow{client: a, out: &dgramWriter{w: slow}}
	fc := &flow{client: c, out: &dgramWriter{w: fast}}
	s := &UDPServer{flows: map[netip.AddrPort]*flow{a: fa, c: fc}}
	b := newBatch()
	for i, from := range []netip.AddrPort{a, c, a, c, c} {
		b.from[i] = from
		b.size[i] = copy(b.bufs[i][headRoom:], fmt.Sprintf("d%d", i))
		b.n++
	}
	s.forwardBatch(b)
	if got := fmt.Sprintf("%q", fast.got); got != `["d1" "d3" "d4"]` {
		t.Errorf("the other flow's backend got %s", got)
	}
	if slow.calls != 1 || s.Dropped() != 2 {
		t.Errorf("%d writes to the full socket, Dropped = %d; want 1 and 2", slow.calls, s.Dropped())
	}
	if fa.stats.in.Load() != 4 || fc.stats.in.Load() != 6 {
		t.Errorf("bytes in: %d and %d, want 4 and 6", fa.stats.in.Load(), fc.stats.in.Load())
	}
	if s.Flows() != 2 {
		t.Errorf("Flows = %d: a full send buffer must not end the flow", s.Flows())
	}
}
