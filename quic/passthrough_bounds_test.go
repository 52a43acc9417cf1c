package quic

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ptFlight is the real two-datagram first flight of a quic-go client with
// SNI quic-go.test.
func ptFlight(t testing.TB) [][]byte {
	return readHex(t, filepath.Join("testdata", "initials", multiPacketCapture))
}

func ptRoutes(t testing.TB, sni, backend string) []PassRoute {
	return []PassRoute{{Name: "r", SNI: []string{sni}, Pool: ptPool(t, backend)}}
}

// TestDemuxPendingFlood: many addresses each send the first half of a
// hello; only MaxPending are held, the rest dropped, and all of them
// expire after HelloTimeout.
func TestDemuxPendingFlood(t *testing.T) {
	ptLeaks(t)
	const maxPending, clients = 8, 40
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", "127.0.0.1:9"),
		DemuxOptions{MaxPending: maxPending, HelloTimeout: 300 * time.Millisecond})
	to, _ := net.ResolveUDPAddr("udp", addr)
	first := ptFlight(t)[0]
	for range clients {
		ptSend(t, ptUDP(t), first, to)
	}
	ptWait(t, func() bool {
		st := d.Stats()
		if st.Pending > maxPending {
			t.Fatalf("%d pending, bound is %d", st.Pending, maxPending)
		}
		return st.DroppedPendingFull == clients-maxPending && st.DroppedHelloTimeout == maxPending
	})
	if st := d.Stats(); st.Pending != 0 || st.Flows != 0 || st.Routed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDemuxGarbageInitials: datagrams that look like Initials but do not
// decrypt hold no state; without a local server they are dropped.
func TestDemuxGarbageInitials(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", "127.0.0.1:9"), DemuxOptions{})
	to, _ := net.ResolveUDPAddr("udp", addr)
	const clients = 30
	for i := range clients {
		g := make([]byte, MinInitialDatagram+i)
		_, _ = rand.Read(g)
		copy(g, []byte{0xc3, 0, 0, 0, 1, 8})       // v1 Initial, 8-byte DCID
		g[14], g[15], g[16], g[17] = 0, 0, 0x44, 0 // no SCID, no token, length 1024
		ptSend(t, ptUDP(t), g, to)
	}
	ptWait(t, func() bool { return d.Stats().DroppedNoLocal == clients })
	if st := d.Stats(); st.Pending != 0 || st.LocalPeers != 0 || st.Unrouted != clients {
		t.Fatalf("stats %+v", st)
	}
}

func TestDemuxPendingBytes(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", "127.0.0.1:9"), DemuxOptions{MaxPendingBytes: 2000})
	to, _ := net.ResolveUDPAddr("udp", addr)
	first := ptFlight(t)[0]
	c := ptUDP(t)
	ptSend(t, c, first, to)
	ptSend(t, c, first, to) // a retransmission: 2 × ~1.25 KiB > 2000
	ptWait(t, func() bool { return d.Stats().DroppedPendingBytes == 1 })
	if st := d.Stats(); st.Pending != 0 || st.Flows != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDemuxMaxFlowsAndNoBackend(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, []PassRoute{
		{Name: "up", SNI: []string{"quic-go.test"}, Pool: ptPool(t, backend.LocalAddr().String())},
		{Name: "none", SNI: []string{"quic-go-v2.test"}, Pool: ptPool(t)},
	}, DemuxOptions{MaxFlows: 1})
	to, _ := net.ResolveUDPAddr("udp", addr)
	for range 2 {
		c := ptUDP(t)
		for _, dg := range ptFlight(t) {
			ptSend(t, c, dg, to)
		}
	}
	ptWait(t, func() bool { st := d.Stats(); return st.Flows == 1 && st.DroppedFlowsFull == 1 })
	v2 := readHex(t, filepath.Join("testdata", "initials", "quic-go-v2.hex"))
	d.mu.Lock()
	d.opts.MaxFlows = 2
	d.mu.Unlock()
	c := ptUDP(t)
	for _, dg := range v2 {
		ptSend(t, c, dg, to)
	}
	ptWait(t, func() bool { return d.Stats().DroppedNoBackend == 1 })
	if st := d.Stats(); st.Flows != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDemuxLocalDelivery reads Local directly: what no route claims
// arrives byte-exact, in order, from the client's address, and replies
// written to Local reach the client.
func TestDemuxLocalDelivery(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, ptRoutes(t, "other.test", "127.0.0.1:9"), DemuxOptions{})
	local := d.Local()
	to, _ := net.ResolveUDPAddr("udp", addr)
	unknownVersion := append([]byte{0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 4, 1, 2, 3, 4, 0}, make([]byte, 1200)...)
	cases := map[string][][]byte{
		"unrouted SNI":      ptFlight(t),
		"short header":      {[]byte{0x40, 1, 2, 3, 4, 5}},
		"unknown version":   {unknownVersion},
		"small Initial":     {ptFlight(t)[0][:1000]},
		"not QUIC":          {[]byte("GET / HTTP/1.0\r\n\r\n")},
		"version negotiate": {[]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
	}
	buf := make([]byte, 1500)
	for name, dgrams := range cases {
		c := ptUDP(t)
		for _, dg := range dgrams {
			ptSend(t, c, dg, to)
		}
		for i, want := range dgrams {
			_ = local.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, from, err := local.ReadFrom(buf)
			if err != nil {
				t.Fatalf("%s: ReadFrom: %v", name, err)
			}
			if !bytes.Equal(buf[:n], want) || from.String() != c.LocalAddr().String() {
				t.Fatalf("%s: datagram %d from %v changed or misattributed", name, i, from)
			}
			if _, err := local.WriteTo([]byte(name), from); err != nil {
				t.Fatal(err)
			}
			if got, _ := ptRecv(t, c); string(got) != name {
				t.Fatalf("%s: reply %q", name, got)
			}
		}
	}
	// Remembered: the unrouted hello's address and the two short headers'
	// ("GET" starts with a clear header-form bit); not the addresses that
	// sent no well-formed v1/v2 long header.
	if st := d.Stats(); st.Routed != 0 || st.Pending != 0 || st.LocalPeers != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A deadline in the past, then Close.
	_ = local.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := local.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past deadline = %v", err)
	}
	_ = local.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, _, err := local.ReadFrom(buf); done <- err }()
	local.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close = %v", err)
	}
}

func TestDemuxLocalQueueFull(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, nil, DemuxOptions{LocalQueue: 2})
	d.Local() // nobody reads it
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	for range 5 {
		ptSend(t, c, []byte{0x40, 1, 2, 3}, to)
	}
	ptWait(t, func() bool { st := d.Stats(); return st.ToLocal == 2 && st.DroppedLocalFull == 3 })
}

// TestDemuxIdle: flows and remembered local addresses end after the idle
// timeout.
func TestDemuxIdle(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", backend.LocalAddr().String()),
		DemuxOptions{IdleTimeout: 200 * time.Millisecond})
	d.Local()
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	for _, dg := range ptFlight(t) {
		ptSend(t, c, dg, to)
	}
	ptSend(t, ptUDP(t), []byte{0x40, 1}, to)
	ptWait(t, func() bool { st := d.Stats(); return st.Flows == 1 && st.LocalPeers == 1 })
	ptWait(t, func() bool { st := d.Stats(); return st.Flows == 0 && st.LocalPeers == 0 && st.CIDs == 0 })
}

func TestCIDTable(t *testing.T) {
	var tab cidTable
	tab.init(6)
	f, g := &flow{}, &flow{}
	short := func(cid ...byte) []byte { return append([]byte{0x40}, append(cid, 0xee, 0xee)...) }
	for i := range 5 { // the fifth evicts the first
		if !tab.add(f, []byte{1, 2, 3, byte(i)}) {
			t.Fatalf("add %d refused", i)
		}
	}
	if tab.lookupShort(short(1, 2, 3, 0)) != nil || tab.lookupShort(short(1, 2, 3, 4)) != f || len(tab.m) != maxCIDsPerFlow {
		t.Fatal("oldest ID not evicted")
	}
	if tab.add(g, []byte{1, 2, 3, 4}) {
		t.Fatal("an ID of another flow was taken over")
	}
	if !tab.add(g, []byte{9, 8, 7, 6, 5, 4, 3, 2}) || tab.lookupShort(short(9, 8, 7, 6, 5, 4, 3, 2)) != g {
		t.Fatal("8-byte ID not found beside 4-byte ones")
	}
	if !tab.add(g, []byte{7}) || tab.add(g, []byte{8}) {
		t.Fatal("table bound not enforced")
	}
	if tab.lookup([]byte{7}) != g {
		t.Fatal("long-header lookup")
	}
	tab.remove(f)
	tab.remove(g)
	if len(tab.m) != 0 || tab.byLen != [MaxCIDLen + 1]int{} || tab.lookupShort(short(1, 2, 3, 4)) != nil {
		t.Fatalf("table not empty after remove: %v %v", tab.m, tab.byLen)
	}
}

// TestDemuxAfterVersionNegotiation: a client that first offers an unknown
// version (answered by the local server) and retries with v1 from the same
// address is still routed by its SNI.
func TestDemuxAfterVersionNegotiation(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", backend.LocalAddr().String()), DemuxOptions{})
	d.Local()
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	ptSend(t, c, append([]byte{0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 4, 1, 2, 3, 4, 0}, make([]byte, 1200)...), to)
	for _, dg := range ptFlight(t) {
		ptSend(t, c, dg, to)
	}
	ptWait(t, func() bool { st := d.Stats(); return st.Routed == 1 && st.ToLocal == 1 && st.ToBackend == 2 })
}

// TestDemuxNoRoutes: without routes nothing is parsed, all goes local.
func TestDemuxNoRoutes(t *testing.T) {
	ptLeaks(t)
	d, addr := ptDemux(t, nil, DemuxOptions{})
	d.Local()
	to, _ := net.ResolveUDPAddr("udp", addr)
	for _, dg := range ptFlight(t) {
		ptSend(t, ptUDP(t), dg, to)
	}
	ptWait(t, func() bool { st := d.Stats(); return st.ToLocal == 2 && st.LocalPeers == 2 && st.Unrouted == 0 })
}

// TestDemuxReorderedFlight: the second half of the hello arrives first;
// the flow opens on the second datagram and the backend gets both, in the
// order they came.
func TestDemuxReorderedFlight(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", backend.LocalAddr().String()), DemuxOptions{})
	to, _ := net.ResolveUDPAddr("udp", addr)
	flight := ptFlight(t)
	c := ptUDP(t)
	ptSend(t, c, flight[1], to)
	ptSend(t, c, flight[0], to)
	for _, want := range [][]byte{flight[1], flight[0]} {
		if got, _ := ptRecv(t, backend); !bytes.Equal(got, want) {
			t.Fatal("datagrams changed or reordered")
		}
	}
	if st := d.Stats(); st.Routed != 1 || st.Flows != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDemuxSetRoutes: a reload changes where new clients go; an open flow
// keeps its backend.
func TestDemuxSetRoutes(t *testing.T) {
	ptLeaks(t)
	b1, b2 := ptUDP(t), ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", b1.LocalAddr().String()), DemuxOptions{})
	to, _ := net.ResolveUDPAddr("udp", addr)
	old := ptUDP(t)
	for _, dg := range ptFlight(t) {
		ptSend(t, old, dg, to)
	}
	ptRecv(t, b1)
	ptRecv(t, b1)
	if err := d.SetRoutes(ptRoutes(t, "*.test", b2.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	if err := d.SetRoutes([]PassRoute{{Name: "bad", SNI: []string{"x.test"}}}); err == nil {
		t.Fatal("a route without a pool was accepted")
	}
	ptSend(t, old, []byte{0x41, 1, 2, 3}, to)
	if got, _ := ptRecv(t, b1); !bytes.Equal(got, []byte{0x41, 1, 2, 3}) {
		t.Fatal("open flow moved")
	}
	c := ptUDP(t)
	for _, dg := range ptFlight(t) {
		ptSend(t, c, dg, to)
	}
	if got, _ := ptRecv(t, b2); !bytes.Equal(got, ptFlight(t)[0]) {
		t.Fatal("new client not routed by the new routes")
	}
	if got, _ := ptRecv(t, b2); !bytes.Equal(got, ptFlight(t)[1]) {
		t.Fatal("new client not routed by the new routes")
	}
}

// TestDemuxBackendRefuses: a backend port with no listener answers ICMP
// port unreachable; the flow ends and the backend is marked down.
func TestDemuxBackendRefuses(t *testing.T) {
	ptLeaks(t)
	gone := ptUDP(t)
	dead := gone.LocalAddr().String()
	gone.Close()
	pool := ptPool(t, dead)
	d, addr := ptDemux(t, []PassRoute{{Name: "r", SNI: []string{"quic-go.test"}, Pool: pool}}, DemuxOptions{})
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	for _, dg := range ptFlight(t) {
		ptSend(t, c, dg, to)
	}
	ptWait(t, func() bool { st := d.Stats(); return st.Routed == 1 && st.Flows == 0 })
	if !pool.Backends()[0].Down(time.Now()) {
		t.Fatal("refusing backend not marked down")
	}
}

// TestDemuxUnconfirmedFlowEnds: a flow whose client sends nothing after its
// Initials (forged from a spoofed address) ends after HelloTimeout; one
// whose client goes on stays.
func TestDemuxUnconfirmedFlowEnds(t *testing.T) {
	ptLeaks(t)
	backend := ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", backend.LocalAddr().String()),
		DemuxOptions{HelloTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
	to, _ := net.ResolveUDPAddr("udp", addr)
	forged, real := ptUDP(t), ptUDP(t)
	for _, c := range []*net.UDPConn{forged, real} {
		for _, dg := range ptFlight(t) {
			ptSend(t, c, dg, to)
		}
	}
	// An Initial retransmission does not confirm; a short header does.
	ptSend(t, forged, ptFlight(t)[0], to)
	ptSend(t, real, []byte{0x41, 1, 2, 3, 4}, to)
	ptWait(t, func() bool { st := d.Stats(); return st.DroppedUnconfirmed == 1 && st.Flows == 1 })
}
