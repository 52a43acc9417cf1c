package quic

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/proxynow/proxynow/tlsmux"
)

// TestRFCClientInitial opens the protected client Initials published in
// RFC 9001 Appendix A.2 and RFC 9369 Appendix A.2 and reads their hello.
func TestRFCClientInitial(t *testing.T) {
	for _, tt := range []struct {
		name    string
		file    string
		version uint32
	}{
		{"v1 RFC 9001 A.2", "testdata/rfc9001-a2-client-initial.hex", Version1},
		{"v2 RFC 9369 A.2", "testdata/rfc9369-a2-client-initial.hex", Version2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pkt := readHex(t, tt.file)[0]
			orig := bytes.Clone(pkt)
			h, err := ParseLongHeader(pkt)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tt.version || h.Type != TypeInitial || !bytes.Equal(h.DCID, unhex(t, "8394c8f03e515708")) ||
				len(h.SCID) != 0 || len(h.Token) != 0 || h.PNOffset != 18 || h.Len != 1200 {
				t.Fatalf("header = %+v", h)
			}
			var c Collector
			done, err := c.Add(pkt)
			if err != nil || !done {
				t.Fatalf("Add = %v, %v", done, err)
			}
			if !bytes.Equal(pkt, orig) {
				t.Fatal("Add modified the datagram")
			}
			hello := c.Hello()
			if string(hello.ServerName) != "example.com" || !hello.OffersALPN("alpn") {
				t.Fatalf("hello: SNI %q ALPN %q", hello.ServerName, hello.ALPN())
			}
			if c.Version() != tt.version || c.Packets() != 1 || !bytes.Equal(c.DCID(), h.DCID) {
				t.Fatalf("version %#x packets %d DCID %x", c.Version(), c.Packets(), c.DCID())
			}
			// The packet number was 2 (RFC 9001 A.2's unprotected header).
			if c.largestPN != 2 {
				t.Fatalf("packet number %d, want 2", c.largestPN)
			}
		})
	}
}

func TestDecodePacketNumber(t *testing.T) {
	for _, tt := range []struct {
		largest   int64
		truncated uint64
		pnLen     int
		want      int64
	}{
		{0xa82f30ea, 0x9b32, 2, 0xa82f9b32}, // RFC 9000 Appendix A.3
		{-1, 0, 1, 0},
		{-1, 2, 4, 2},
		{0xff, 0x01, 1, 0x101},
		{0x100, 0xff, 1, 0xff},
	} {
		if got := decodePacketNumber(tt.largest, tt.truncated, tt.pnLen); got != tt.want {
			t.Errorf("decode(%#x, %#x, %d) = %#x, want %#x", tt.largest, tt.truncated, tt.pnLen, got, tt.want)
		}
	}
}

var (
	dcidA    = []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	dcidB    = []byte{0xca, 0xfe, 0xba, 0xbe, 5, 6, 7, 8, 9}
	testSCID = []byte{0x51, 0xc1, 0xd0}
)

// collectStep is one datagram fed to a Collector and what Add must answer.
type collectStep struct {
	dgram   []byte
	done    bool
	wantErr error
}

func TestCollector(t *testing.T) {
	hello := buildHello("p.test", []string{"h3"}, 200)
	big := buildHello("big.p.test", []string{"h3", "h3-29"}, 3000) // 3 packets
	third := len(big) / 3
	seal := func(p initialSpec) []byte {
		if p.dcid == nil {
			p.dcid = dcidA
		}
		if p.testSCID == nil {
			p.testSCID = testSCID
		}
		if p.padTo == 0 {
			p.padTo = MinInitialDatagram
		}
		return sealInitial(t, p)
	}
	bigPart := func(pn uint64, i int, version uint32) []byte {
		end := min((i+1)*third, len(big))
		if i == 2 {
			end = len(big)
		}
		return seal(initialSpec{version: version, pn: pn, payload: cryptoFrame(i*third, big[i*third:end]), padTo: 1})
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, max(0, MinInitialDatagram-len(b)))...) }
	join := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	zeroRTT := func() []byte {
		b := []byte{0xd0}
		b = binary.BigEndian.AppendUint32(b, Version1)
		b = append(append(b, byte(len(dcidA))), dcidA...)
		b = append(append(b, byte(len(testSCID))), testSCID...)
		b = append(b, 0x40, 40)
		return append(b, make([]byte, 40)...)
	}
	corrupt := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-1] ^= 1; return b }
	shortHdr := append([]byte{0x40}, make([]byte, 1300)...)

	tests := []struct {
		name  string
		steps []collectStep
		sni   string
	}{
		{name: "one packet", sni: "p.test", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(0, hello)}), done: true}}},
		{name: "v2 one packet", sni: "p.test", steps: []collectStep{{dgram: seal(initialSpec{version: Version2, payload: cryptoFrame(0, hello)}), done: true}}},
		{name: "three datagrams in order", sni: "big.p.test", steps: []collectStep{
			{dgram: pad(bigPart(0, 0, Version1))}, {dgram: pad(bigPart(1, 1, Version1))}, {dgram: pad(bigPart(2, 2, Version1)), done: true}}},
		{name: "three datagrams out of order", sni: "big.p.test", steps: []collectStep{
			{dgram: pad(bigPart(2, 2, Version1))}, {dgram: pad(bigPart(0, 0, Version1))}, {dgram: pad(bigPart(1, 1, Version1)), done: true}}},
		{name: "v2 three datagrams reversed", sni: "big.p.test", steps: []collectStep{
			{dgram: pad(bigPart(2, 2, Version2))}, {dgram: pad(bigPart(1, 1, Version2))}, {dgram: pad(bigPart(0, 0, Version2)), done: true}}},
		{name: "coalesced Initials and a 0-RTT packet", sni: "big.p.test", steps: []collectStep{
			{dgram: join(bigPart(0, 0, Version1), bigPart(1, 1, Version1))},
			{dgram: join(bigPart(2, 2, Version1), zeroRTT()), done: true}}},
		{name: "0-RTT first in the datagram", sni: "p.test", steps: []collectStep{
			{dgram: pad(join(zeroRTT(), seal(initialSpec{payload: cryptoFrame(0, hello), padTo: 1}))), done: true}}},
		{name: "retransmitted datagram", sni: "big.p.test", steps: []collectStep{
			{dgram: pad(bigPart(0, 0, Version1))}, {dgram: pad(bigPart(0, 0, Version1))},
			{dgram: pad(bigPart(3, 1, Version1))}, {dgram: pad(bigPart(4, 2, Version1)), done: true}}},
		{name: "duplicate and overlapping frames", sni: "p.test", steps: []collectStep{
			{dgram: seal(initialSpec{payload: join(cryptoFrame(10, hello[10:40]), cryptoFrame(20, hello[20:60]), cryptoFrame(10, hello[10:30]))})},
			{dgram: seal(initialSpec{pn: 1, payload: join(cryptoFrame(50, hello[50:]), cryptoFrame(0, hello[:11]))}), done: true}}},
		{name: "ACK PING and CONNECTION_CLOSE tolerated", sni: "p.test", steps: []collectStep{
			{dgram: seal(initialSpec{payload: join(
				[]byte{frameAck, 5, 0, 1, 0, 1, 1}, // largest 5, delay 0, 1 range, first 0, gap 1 len 1
				[]byte{frameAckECN, 1, 0, 0, 0, 1, 2, 3},
				[]byte{framePing},
				[]byte{frameConnectionClose, 0, 0, 2, 'h', 'i'},
				cryptoFrame(0, hello))}), done: true}}},
		{name: "4-byte packet numbers", sni: "p.test", steps: []collectStep{
			{dgram: seal(initialSpec{pn: 0x10000, pnLen: 4, payload: cryptoFrame(0, hello[:100])})},
			{dgram: seal(initialSpec{pn: 0x10001, pnLen: 1, payload: cryptoFrame(100, hello[100:])}), done: true}}},
		{name: "token kept out of the way", sni: "p.test", steps: []collectStep{
			{dgram: seal(initialSpec{token: bytes.Repeat([]byte{7}, 90), payload: cryptoFrame(0, hello)}), done: true}}},
		{name: "truncated datagram then the whole one", sni: "p.test", steps: []collectStep{
			{dgram: seal(initialSpec{payload: cryptoFrame(0, hello)})[:900], wantErr: ErrMalformed},
			{dgram: seal(initialSpec{payload: cryptoFrame(0, hello)}), done: true}}},
		{name: "corrupt packet ignored", sni: "p.test", steps: []collectStep{
			{dgram: corrupt(seal(initialSpec{payload: cryptoFrame(0, hello)})), wantErr: ErrDecrypt},
			{dgram: seal(initialSpec{payload: cryptoFrame(0, hello)}), done: true}}},
		{name: "corrupt second coalesced packet keeps the first", sni: "big.p.test", steps: []collectStep{
			{dgram: join(bigPart(0, 0, Version1), corrupt(bigPart(1, 1, Version1)))},
			{dgram: pad(bigPart(2, 1, Version1))}, {dgram: pad(bigPart(3, 2, Version1)), done: true}}},
		{name: "coalesced packet of another DCID ignored", sni: "big.p.test", steps: []collectStep{
			{dgram: join(bigPart(0, 0, Version1), seal(initialSpec{dcid: dcidB, payload: cryptoFrame(0, big), padTo: 1}))},
			{dgram: pad(bigPart(1, 1, Version1))}, {dgram: pad(bigPart(2, 2, Version1)), done: true}}},
		{name: "datagram of another connection ignored", sni: "big.p.test", steps: []collectStep{
			{dgram: pad(bigPart(0, 0, Version1))},
			{dgram: seal(initialSpec{dcid: dcidB, payload: cryptoFrame(0, hello)}), wantErr: ErrOtherConnection},
			{dgram: pad(bigPart(1, 1, Version2)), wantErr: ErrOtherConnection},
			{dgram: pad(bigPart(1, 1, Version1))}, {dgram: pad(bigPart(2, 2, Version1)), done: true}}},
		{name: "short header", steps: []collectStep{{dgram: shortHdr, wantErr: ErrNotInitial}}},
		{name: "0-RTT only", steps: []collectStep{{dgram: pad(zeroRTT()), wantErr: ErrNotInitial}}},
		{name: "empty", steps: []collectStep{{dgram: nil, wantErr: ErrNotInitial}}},
		{name: "version negotiation", steps: []collectStep{{dgram: join([]byte{0x80, 0, 0, 0, 0, 1, 9, 1, 8}, []byte{0, 0, 0, 1}), wantErr: ErrVersionNegotiation}}},
		{name: "unknown version", steps: []collectStep{{dgram: pad(join([]byte{0xc0, 0xff, 0, 0, 0x1d, 8}, dcidA, []byte{0})), wantErr: ErrUnsupportedVersion}}},
		{name: "forbidden frame is fatal", steps: []collectStep{
			{dgram: seal(initialSpec{payload: join(cryptoFrame(0, hello[:10]), []byte{0x08, 0, 1, 'x'})}), wantErr: ErrProtocolViolation},
			{dgram: seal(initialSpec{pn: 1, payload: cryptoFrame(0, hello)}), wantErr: ErrProtocolViolation}}},
		{name: "reserved bits", steps: []collectStep{{dgram: seal(initialSpec{reserved: true, payload: cryptoFrame(0, hello)}), wantErr: ErrProtocolViolation}}},
		{name: "no frames", steps: []collectStep{{dgram: seal(initialSpec{payload: nil, pnLen: 4, padTo: 1}), wantErr: ErrProtocolViolation}}},
		{name: "truncated CRYPTO frame", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(0, hello)[:20], padTo: 1}), wantErr: ErrProtocolViolation}}},
		{name: "ACK range count too large", steps: []collectStep{{dgram: seal(initialSpec{payload: []byte{frameAck, 0, 0, 0x80, 0, 0x10, 0, 0}}), wantErr: ErrProtocolViolation}}},
		{name: "not a ClientHello", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(0, append([]byte{2}, hello[1:]...))}), wantErr: ErrProtocolViolation}}},
		{name: "malformed ClientHello", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(0, append(bytes.Clone(hello[:4]), make([]byte, len(hello)-4)...))}), wantErr: tlsmux.ErrMalformed}}},
		{name: "hello longer than the limit", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(0, []byte{1, 1, 0, 0})}), wantErr: ErrTooLarge}}},
		{name: "CRYPTO offset past the limit", steps: []collectStep{{dgram: seal(initialSpec{payload: cryptoFrame(DefaultMaxCryptoData, []byte{1})}), wantErr: ErrTooLarge}}},
		{name: "too many holes", steps: []collectStep{{dgram: seal(initialSpec{payload: func() []byte {
			var b []byte
			for i := range MaxFragments + 1 {
				b = append(b, cryptoFrame(10+2*i, []byte{0})...)
			}
			return b
		}()}), wantErr: ErrTooFragmented}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Collector
			runSteps(t, &c, tt.steps, tt.sni)
			// A reset Collector must give the same answers.
			c.Reset()
			runSteps(t, &c, tt.steps, tt.sni)
		})
	}
}

func runSteps(t *testing.T, c *Collector, steps []collectStep, sni string) {
	t.Helper()
	for i, s := range steps {
		orig := bytes.Clone(s.dgram)
		done, err := c.Add(s.dgram)
		if done != s.done || (s.wantErr == nil) != (err == nil) || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: Add = %v, %v; want %v, %v", i, done, err, s.done, s.wantErr)
		}
		if !bytes.Equal(orig, s.dgram) {
			t.Fatalf("step %d: datagram modified", i)
		}
		if !done && c.Hello() != nil {
			t.Fatalf("step %d: Hello before done", i)
		}
	}
	if sni == "" {
		return
	}
	if h := c.Hello(); h == nil || string(h.ServerName) != sni || !h.OffersALPN("h3") {
		t.Fatalf("hello = %+v, want SNI %q with h3", h, sni)
	}
	// Done is sticky: more datagrams change nothing.
	if done, err := c.Add([]byte{0xc0}); !done || err != nil {
		t.Fatalf("Add after done = %v, %v", done, err)
	}
}

func TestCollectorLimit(t *testing.T) {
	hello := buildHello("p.test", nil, 500)
	c := Collector{MaxCryptoData: 400}
	_, err := c.Add(sealInitial(t, initialSpec{dcid: dcidA, payload: cryptoFrame(0, hello), padTo: MinInitialDatagram}))
	if !errors.Is(err, ErrTooLarge) || !errors.Is(c.Err(), ErrTooLarge) {
		t.Fatalf("Add = %v, Err = %v; want ErrTooLarge", err, c.Err())
	}
}

func TestCryptoStreamSpans(t *testing.T) {
	var s cryptoStream
	write := func(a, b int) {
		t.Helper()
		if err := s.write(uint64(a), make([]byte, b-a), 1000); err != nil {
			t.Fatal(err)
		}
	}
	write(10, 20)
	write(30, 40)
	write(50, 60)
	if s.n != 3 || s.contiguous() != 0 {
		t.Fatalf("spans %v", s.spans[:s.n])
	}
	write(15, 55) // bridges all three
	if s.n != 1 || s.spans[0] != (span{10, 60}) {
		t.Fatalf("spans %v", s.spans[:s.n])
	}
	write(0, 10) // adjacent merges
	write(70, 80)
	write(60, 70)
	if s.n != 1 || s.contiguous() != 80 || len(s.buf) != 80 {
		t.Fatalf("spans %v len %d", s.spans[:s.n], len(s.buf))
	}
	if err := s.write(990, make([]byte, 11), 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past limit = %v", err)
	}
	if err := s.write(1<<63, make([]byte, 1), 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write at a huge offset = %v", err)
	}
}
