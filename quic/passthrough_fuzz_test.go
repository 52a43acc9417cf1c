package quic

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// FuzzDemux drives a Demux's datagram handling directly (no read loop)
// with datagrams from four client addresses, and checks that its tables
// stay consistent and within their bounds. The input is a sequence of
// (address index, 2-byte length, datagram).
func FuzzDemux(f *testing.F) {
	enc := func(parts ...any) []byte {
		var b []byte
		for i := 0; i < len(parts); i += 2 {
			d := parts[i+1].([]byte)
			b = append(b, byte(parts[i].(int)))
			b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
			b = append(b, d...)
		}
		return b
	}
	flight := ptFlight(f)
	hs := append([]byte{0xe0, 0, 0, 0, 1, 0, 4, 0xc1, 0xd2, 0xc3, 0xd4, 0x40, 4}, 0, 0, 0, 0)
	f.Add(enc(0, flight[0], 0, flight[1], 1, []byte{0x41, 0xc1, 0xd2, 0xc3, 0xd4, 1}))
	f.Add(enc(1, flight[1], 2, flight[0], 1, flight[0], 3, []byte{0x40, 1, 2}))
	f.Add(enc(0, append([]byte{0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 4, 1, 2, 3, 4, 0}, make([]byte, 1200)...), 0, flight[0], 0, flight[1]))
	f.Add(enc(2, hs, 2, flight[0][:1250], 3, flight[0]))
	backend := ptUDP(f)
	routes := ptRoutes(f, "quic-go.test", backend.LocalAddr().String())
	addrs := [4]netip.AddrPort{}
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(40000+i))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDemux(pc, routes, DemuxOptions{MaxPending: 2, MaxPendingBytes: 4000, MaxFlows: 2, MaxLocalPeers: 2, MaxCIDs: 3, LocalQueue: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if len(in)%2 == 0 {
			d.Local() // half the inputs run with a local server
		}
		for len(in) >= 3 {
			idx, n := int(in[0])%len(addrs), min(int(binary.BigEndian.Uint16(in[1:])), len(in)-3)
			d.handle(in[3:3+n], addrs[idx])
			in = in[3+n:]
			d.checkInvariants(t)
		}
	})
}

// checkInvariants verifies the counters against the peer table and the
// bounds; a test helper.
func (d *Demux) checkInvariants(t *testing.T) {
	t.Helper()
	d.mu.RLock()
	defer d.mu.RUnlock()
	var pend, flows, local int
	for k, p := range d.peers {
		if p.key != k {
			t.Fatalf("peer keyed %v says %v", k, p.key)
		}
		switch {
		case p.pend != nil:
			pend++
		case p.flow != nil:
			flows++
			if *p.flow.client.Load() != k {
				t.Fatalf("flow of %v replies to %v", k, *p.flow.client.Load())
			}
		default:
			local++
		}
	}
	if pend != d.nPending || flows != d.nFlows || local != d.nLocal {
		t.Fatalf("counted %d/%d/%d pending/flows/local, table has %d/%d/%d", d.nPending, d.nFlows, d.nLocal, pend, flows, local)
	}
	if pend > d.opts.MaxPending || flows > d.opts.MaxFlows || local > d.opts.MaxLocalPeers || len(d.cids.m) > d.opts.MaxCIDs {
		t.Fatalf("bounds passed: %d pending, %d flows, %d local, %d CIDs", pend, flows, local, len(d.cids.m))
	}
	for _, f := range d.cids.m {
		if f.removed {
			t.Fatal("CID of a removed flow")
		}
	}
}
