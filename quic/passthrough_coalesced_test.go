package quic

import "testing"

// ptLong builds a v1 long-header packet of type bits typ with a payload of
// n bytes (the packet number counts in the Length field, as on the wire).
func ptLong(typ byte, dcid, scid []byte, n int) []byte {
	b := []byte{0xc0 | typ<<4, 0, 0, 0, 1, byte(len(dcid))}
	b = append(b, dcid...)
	b = append(b, byte(len(scid)))
	b = append(b, scid...)
	if typ == 0 { // an Initial's empty token
		b = append(b, 0)
	}
	b = append(b, 0x40|byte(n>>8), byte(n))
	return append(b, make([]byte, n)...)
}

func TestTrailingShortHeader(t *testing.T) {
	dcid, scid := []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}
	hs := ptLong(2, dcid, scid, 40)
	init := ptLong(0, dcid, scid, 30)
	short := append([]byte{0x43, 9, 9, 9, 9}, "payload"...)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"short alone", short, short},
		{"empty", nil, nil},
		{"handshake alone", hs, nil},
		{"handshake then short", cat(hs, short), short},
		{"initial, handshake, short", cat(init, hs, short), short},
		{"zero padding after handshake", cat(hs, make([]byte, 20)), nil},
		{"truncated handshake", cat(hs, short)[:len(hs)-1], nil},
		{"retry runs to the end", cat(ptLong(3, dcid, scid, 8), short), nil},
		{"unknown version", cat([]byte{0xc0, 0xa, 0xa, 0xa, 0xa, 0, 0}, short), nil},
	} {
		got := trailingShortHeader(tc.in)
		if string(got) != string(tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
		}
	}
}

// TestDemuxMigrationAfterCoalescedOneRTT: quic-go sends its first 1-RTT
// packet, already with a connection ID the backend issued in an encrypted
// NEW_CONNECTION_ID frame, behind its Handshake packet in one datagram. A
// NAT rebinding right after it must find the flow by that ID.
func TestDemuxMigrationAfterCoalescedOneRTT(t *testing.T) {
	ptLeaks(t)
	r := ptRawFlow(t, "quic-go.test")
	d, backend, client, to, flowAddr := r.d, r.backend, r.client, r.to, r.flowAddr
	serverCID, clientCID := []byte{0xc1, 0xd2, 0xc3, 0xd4}, []byte{0xaa, 0xbb}
	ptSend(t, backend, ptLong(2, clientCID, serverCID, 30), flowAddr)
	ptRecv(t, client)

	// The client's last Handshake packet with its first 1-RTT packet
	// coalesced behind it, addressed to an ID the backend never showed
	// in clear.
	issued := []byte{0x11, 0x22, 0x33, 0x44}
	oneRTT := append(append([]byte{0x41}, issued...), "request"...)
	dg := append(ptLong(2, serverCID, clientCID, 25), oneRTT...)
	ptSend(t, client, dg, to)
	if got, _ := ptRecv(t, backend); string(got) != string(dg) {
		t.Fatal("coalesced datagram changed on the way")
	}

	// The NAT rebinds at once: the next datagram is a short header with
	// the issued ID from a new address.
	moved := ptUDP(t)
	short := append(append([]byte{0x41}, issued...), "after rebinding"...)
	ptSend(t, moved, short, to)
	if got, _ := ptRecv(t, backend); string(got) != string(short) {
		t.Fatalf("short header not relayed after rebinding: %q", got)
	}
	ptSend(t, backend, []byte("reply"), flowAddr)
	if got, _ := ptRecv(t, moved); string(got) != "reply" {
		t.Fatal("reply not sent to the new address")
	}
	if st := d.Stats(); st.Migrations != 1 || st.Flows != 1 || st.CIDs != 2 || st.DroppedNoLocal != 0 {
		t.Fatalf("stats %+v", st)
	}
}
