package quic

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/tlsmux"
)

type helloT = tlsmux.ClientHello

// ptLeaks fails the test if it leaves goroutines behind once its cleanups
// ran (registered first, it runs last). Goroutines from before the test
// are ignored, so it does not depend on the rest of the package.
func ptLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func ptCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDemuxPassthroughAndLocal: SNI p.test reaches the backend, which
// presents its own certificate; SNI t.test is served by the local server.
func TestDemuxPassthroughAndLocal(t *testing.T) {
	ptLeaks(t)
	back, backRoots := ptBackend(t, "backend:", "p.test")
	d, addr := ptDemux(t, []PassRoute{{Name: "p", SNI: []string{"p.test"}, Pool: ptPool(t, back)}}, DemuxOptions{})
	localRoots := ptLocalServer(t, d, "local:", "t.test")
	ctx := ptCtx(t)
	for _, c := range []struct {
		sni   string
		roots *x509.CertPool
		want  string
	}{
		{"p.test", backRoots, "backend:hi"},
		{"t.test", localRoots, "local:hi"},
	} {
		got, err := ptExchange(ctx, addr, c.sni, c.roots, "hi")
		if err != nil || got != c.want {
			t.Fatalf("%s: %q, %v; want %q", c.sni, got, err, c.want)
		}
	}
	st := d.Stats()
	if st.Routed != 1 || st.Unrouted != 1 || st.ToBackend == 0 || st.ToClient == 0 || st.ToLocal == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDemuxConcurrentClients runs 50 clients at once, half passed through
// and half terminated locally.
func TestDemuxConcurrentClients(t *testing.T) {
	ptLeaks(t)
	back, backRoots := ptBackend(t, "backend:", "p.test")
	d, addr := ptDemux(t, []PassRoute{{Name: "p", SNI: []string{"p.test"}, Pool: ptPool(t, back)}}, DemuxOptions{})
	localRoots := ptLocalServer(t, d, "local:", "t.test")
	ctx := ptCtx(t)
	const n = 50
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sni, roots, marker := "p.test", backRoots, "backend:"
			if i%2 == 1 {
				sni, roots, marker = "t.test", localRoots, "local:"
			}
			msg := fmt.Sprintf("client %d", i)
			got, err := ptExchange(ctx, addr, sni, roots, msg)
			if err == nil && got != marker+msg {
				err = fmt.Errorf("%s: got %q, want %q", sni, got, marker+msg)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := d.Stats(); st.Routed != n/2 || st.Unrouted != n/2 {
		t.Fatalf("routed %d unrouted %d, want %d each (stats %+v)", st.Routed, st.Unrouted, n/2, st)
	}
}

// ptRebinder relays one client's datagrams to target from a socket it can
// swap mid-connection, as a NAT that rebinds does.
type ptRebinder struct {
	front  *net.UDPConn
	target *net.UDPAddr
	wg     sync.WaitGroup

	mu     sync.Mutex
	back   *net.UDPConn
	client *net.UDPAddr
}

func newRebinder(t *testing.T, target string) *ptRebinder {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := net.ResolveUDPAddr("udp", target)
	r := &ptRebinder{front: front, target: ta}
	r.rebind(t)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			back := r.back
			r.mu.Unlock()
			_, _ = back.WriteToUDP(buf[:n], r.target)
		}
	}()
	t.Cleanup(func() {
		front.Close()
		r.mu.Lock()
		r.back.Close()
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// rebind moves the relay to a new source port and drops the old one.
func (r *ptRebinder) rebind(t *testing.T) {
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	old := r.back
	r.back = back
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			client := r.client
			r.mu.Unlock()
			if client != nil {
				_, _ = r.front.WriteToUDP(buf[:n], client)
			}
		}
	}()
}

// TestDemuxMigration: the client's NAT rebinds mid-connection; its next
// packets come from a new port and the connection keeps working.
func TestDemuxMigration(t *testing.T) {
	ptLeaks(t)
	back, roots := ptBackend(t, "backend:", "p.test")
	d, addr := ptDemux(t, []PassRoute{{Name: "p", SNI: []string{"p.test"}, Pool: ptPool(t, back)}}, DemuxOptions{})
	r := newRebinder(t, addr)
	ctx := ptCtx(t)
	conn, err := quicgo.DialAddr(ctx, r.front.LocalAddr().String(),
		&tls.Config{ServerName: "p.test", RootCAs: roots, NextProtos: []string{ptALPN}}, &quicgo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	for i := range 3 {
		msg := fmt.Sprintf("before rebinding %d", i)
		if got, err := ptStream(ctx, conn, msg); err != nil || got != "backend:"+msg {
			t.Fatalf("%q, %v", got, err)
		}
	}
	r.rebind(t)
	for i := range 3 {
		msg := fmt.Sprintf("after rebinding %d", i)
		if got, err := ptStream(ctx, conn, msg); err != nil || got != "backend:"+msg {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if st := d.Stats(); st.Migrations != 1 || st.Flows != 1 || st.Routed != 1 {
		t.Fatalf("stats %+v, want one flow migrated once", st)
	}
}

// TestDemuxRawRelay checks byte-exact relaying of a real first flight,
// connection ID tracking from the backend's long header and migration by
// a short header from a new address, with plain sockets.
func TestDemuxRawRelay(t *testing.T) {
	ptLeaks(t)
	r := ptRawFlow(t, "QUIC-go.TEST.")
	d, backend, client, to, flowAddr := r.d, r.backend, r.client, r.to, r.flowAddr
	// The backend answers with a long header choosing SCID 0xc1d2c3d4.
	serverCID := []byte{0xc1, 0xd2, 0xc3, 0xd4}
	hs := append([]byte{0xe0, 0, 0, 0, 1, 0, byte(len(serverCID))}, serverCID...)
	hs = append(hs, 0x40, 30)
	hs = append(hs, make([]byte, 30)...)
	ptSend(t, backend, hs, flowAddr)
	if got, _ := ptRecv(t, client); string(got) != string(hs) {
		t.Fatal("backend's datagram changed on the way")
	}
	// The client's NAT rebinds: a short header with the server's CID.
	moved := ptUDP(t)
	short := append(append([]byte{0x41}, serverCID...), "short header payload"...)
	ptSend(t, moved, short, to)
	if got, _ := ptRecv(t, backend); string(got) != string(short) {
		t.Fatal("short header not relayed after rebinding")
	}
	ptSend(t, backend, []byte("reply"), flowAddr)
	if got, _ := ptRecv(t, moved); string(got) != "reply" {
		t.Fatal("reply not sent to the new address")
	}
	st := d.Stats()
	if st.Migrations != 1 || st.CIDs != 1 || st.Flows != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A short header from an unknown address with an unknown CID is not
	// the flow's (no local server: dropped and counted).
	ptSend(t, ptUDP(t), append([]byte{0x41, 9, 9, 9, 9}, "x"...), to)
	ptWait(t, func() bool { return d.Stats().DroppedNoLocal == 1 })
}

// rawFlow is a passthrough flow opened with plain sockets: client sent
// the captured first flight to the Demux at to, and backend received it,
// unchanged, from the flow's socket flowAddr.
type rawFlow struct {
	d               *Demux
	backend, client *net.UDPConn
	to, flowAddr    *net.UDPAddr
}

// ptRawFlow opens a rawFlow through a route for sni (the capture's SNI is
// quic-go.test).
func ptRawFlow(t *testing.T, sni string) rawFlow {
	t.Helper()
	r := rawFlow{backend: ptUDP(t), client: ptUDP(t)}
	var addr string
	r.d, addr = ptDemux(t, []PassRoute{{Name: "qg", SNI: []string{sni}, Pool: ptPool(t, r.backend.LocalAddr().String())}}, DemuxOptions{})
	flight := readHex(t, filepath.Join("testdata", "initials", multiPacketCapture))
	r.to, _ = net.ResolveUDPAddr("udp", addr)
	for _, dg := range flight {
		ptSend(t, r.client, dg, r.to)
	}
	for i, want := range flight {
		got, from := ptRecv(t, r.backend)
		if string(got) != string(want) {
			t.Fatalf("datagram %d changed on the way", i)
		}
		r.flowAddr = from
	}
	return r
}

func ptUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ptSend(t testing.TB, c *net.UDPConn, b []byte, to *net.UDPAddr) {
	t.Helper()
	if _, err := c.WriteToUDP(b, to); err != nil {
		t.Fatal(err)
	}
}

func ptRecv(t testing.TB, c *net.UDPConn) ([]byte, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], from
}

// ptWait polls cond until it holds; the events it waits for (counters
// moved by the Demux's goroutines) have no channel to wait on.
func ptWait(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDemuxShutdown(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	pc := ptUDP(t)
	d, err := NewDemux(pc, []PassRoute{{Name: "qg", SNI: []string{"quic-go.test"}, Pool: ptPool(t, backend.LocalAddr().String())}}, DemuxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve() }()
	client := ptUDP(t)
	for _, dg := range readHex(t, filepath.Join("testdata", "initials", multiPacketCapture)) {
		ptSend(t, client, dg, pc.LocalAddr().(*net.UDPAddr))
	}
	ptWait(t, func() bool { return d.Stats().Flows == 1 })
	// The flow stays busy: Shutdown gives up at the context's end.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stopBusy := make(chan struct{})
	var busy sync.WaitGroup
	busy.Add(1)
	go func() {
		defer busy.Done()
		for {
			select {
			case <-stopBusy:
				return
			case <-time.After(50 * time.Millisecond):
				_, _ = client.WriteToUDP([]byte{0x41, 1}, pc.LocalAddr().(*net.UDPAddr))
			}
		}
	}()
	if err := d.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's deadline", err)
	}
	close(stopBusy)
	busy.Wait()
	if err := <-served; !errors.Is(err, l4.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if st := d.Stats(); st.Flows != 0 || st.Pending != 0 {
		t.Fatalf("stats after Shutdown %+v", st)
	}
	if err := d.Serve(); !errors.Is(err, l4.ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}

func TestDemuxShutdownDrainsQuietFlows(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, []PassRoute{{Name: "qg", SNI: []string{"quic-go.test"}, Pool: ptPool(t, backend.LocalAddr().String())}}, DemuxOptions{})
	client := ptUDP(t)
	to, _ := net.ResolveUDPAddr("udp", addr)
	for _, dg := range readHex(t, filepath.Join("testdata", "initials", multiPacketCapture)) {
		ptSend(t, client, dg, to)
	}
	ptWait(t, func() bool { return d.Stats().Flows == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want the quiet flow drained", err)
	}
}

func TestPassRoutes(t *testing.T) {
	pool := ptPool(t, "127.0.0.1:1")
	tab, err := compilePassRoutes([]PassRoute{
		{Name: "exact", SNI: []string{"P.test"}, Pool: pool},
		{Name: "wild", SNI: []string{"*.w.test"}, Pool: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	hello := func(sni string) *helloT { h := new(helloT); h.ServerName = []byte(sni); return h }
	for sni, want := range map[string]string{
		"p.test": "exact", "P.TEST.": "exact", "a.w.test": "wild", "A.W.Test.": "wild",
		"w.test": "", "a.b.w.test": "", "": "", "q.test": "",
	} {
		r := tab.match(hello(sni))
		if got := ""; r != nil {
			got = r.Name
			if got != want {
				t.Errorf("%q matched %q, want %q", sni, got, want)
			}
		} else if want != "" {
			t.Errorf("%q matched nothing, want %q", sni, want)
		}
	}
	any, err := compilePassRoutes([]PassRoute{{Name: "all", Pool: pool}})
	if err != nil || any.match(hello("")).Name != "all" || any.match(hello("x.test")).Name != "all" {
		t.Fatal("a route without SNI must match every hello")
	}
	for name, routes := range map[string][]PassRoute{
		"duplicate name":  {{Name: "a", SNI: []string{"x.test"}, Pool: pool}, {Name: "b", SNI: []string{"X.test"}, Pool: pool}},
		"two catch-alls":  {{Name: "a", Pool: pool}, {Name: "b", Pool: pool}},
		"no pool":         {{Name: "a", SNI: []string{"x.test"}}},
		"empty wildcard":  {{Name: "a", SNI: []string{"*."}, Pool: pool}},
		"empty SNI entry": {{Name: "a", SNI: []string{""}, Pool: pool}},
	} {
		if _, err := compilePassRoutes(routes); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "quic_route") {
			t.Errorf("%s: %v does not name the quic_route", name, err)
		}
	}
}

// TestDemuxVersionNegotiationByLocal: an Initial of an unknown version is
// answered by the local quic-go server with Version Negotiation.
func TestDemuxVersionNegotiationByLocal(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", "127.0.0.1:9"), DemuxOptions{})
	ptLocalServer(t, d, "local:", "t.test")
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	dcid, scid := []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{9, 9, 9, 9}
	pkt := append([]byte{0xc0, 0x1a, 0x2a, 0x3a, 0x4a, byte(len(dcid))}, dcid...)
	pkt = append(append(append(pkt, byte(len(scid))), scid...), make([]byte, 1200)...)
	ptSend(t, c, pkt, to)
	got, _ := ptRecv(t, c)
	h, err := ParseLongHeader(got)
	if !errors.Is(err, ErrVersionNegotiation) || string(h.DCID) != string(scid) || string(h.SCID) != string(dcid) {
		t.Fatalf("reply %x: %v, header %+v", got, err, h)
	}
}

// TestDemuxLocalClientRebinds: a client of the local server rebinds; its
// short headers from the new port reach the local server, which keeps the
// connection (quic-go validates the new path itself).
func TestDemuxLocalClientRebinds(t *testing.T) {
	ptLeaks(t)
	back, _ := ptBackend(t, "backend:", "p.test")
	d, addr := ptDemux(t, []PassRoute{{Name: "p", SNI: []string{"p.test"}, Pool: ptPool(t, back)}}, DemuxOptions{})
	roots := ptLocalServer(t, d, "local:", "t.test")
	r := newRebinder(t, addr)
	ctx := ptCtx(t)
	conn, err := quicgo.DialAddr(ctx, r.front.LocalAddr().String(),
		&tls.Config{ServerName: "t.test", RootCAs: roots, NextProtos: []string{ptALPN}}, &quicgo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if got, err := ptStream(ctx, conn, "one"); err != nil || got != "local:one" {
		t.Fatalf("%q, %v", got, err)
	}
	r.rebind(t)
	if got, err := ptStream(ctx, conn, "two"); err != nil || got != "local:two" {
		t.Fatalf("after rebinding: %q, %v", got, err)
	}
	if st := d.Stats(); st.Routed != 0 || st.Migrations != 0 || st.LocalPeers < 2 {
		t.Fatalf("stats %+v", st)
	}
}
