package quic

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseLongHeader(t *testing.T) {
	long := func(first byte, version []byte, rest ...byte) []byte {
		return append(append([]byte{first}, version...), rest...)
	}
	v1 := []byte{0, 0, 0, 1}
	v2 := []byte{0x6b, 0x33, 0x43, 0xcf}
	for _, tt := range []struct {
		name    string
		in      []byte
		wantErr error
		want    LongHeader // compared on Version, Type, DCID, SCID, Token, PNOffset, Len
	}{
		{name: "empty", in: nil, wantErr: ErrNotLongHeader},
		{name: "short header", in: []byte{0x40, 1, 2, 3, 4, 5, 6, 7}, wantErr: ErrNotLongHeader},
		{name: "too short", in: []byte{0xc0, 0, 0, 0, 1}, wantErr: ErrMalformed},
		{name: "DCID past the end", in: long(0xc0, v1, 8, 1, 2), wantErr: ErrMalformed},
		{name: "SCID past the end", in: long(0xc0, v1, 1, 0xaa, 5, 1), wantErr: ErrMalformed},
		{name: "token past the end", in: long(0xc0, v1, 1, 0xaa, 0, 5, 1), wantErr: ErrMalformed},
		{name: "length past the end", in: long(0xc0, v1, 1, 0xaa, 0, 0, 9, 1, 2), wantErr: ErrMalformed},
		{name: "missing length", in: long(0xc0, v1, 1, 0xaa, 0, 0), wantErr: ErrMalformed},
		{name: "CID over 20 bytes", in: append(long(0xc0, v1, 21), make([]byte, 24)...), wantErr: ErrMalformed},
		{name: "fixed bit clear", in: long(0x80, v1, 1, 0xaa, 0, 0, 1, 0), wantErr: ErrNotLongHeader},
		{
			name: "v1 Initial with token and a packet after it",
			in:   long(0xc1, v1, 2, 0xaa, 0xbb, 1, 0xcc, 2, 't', 'k', 3, 1, 2, 3, 0x40, 0, 0),
			want: LongHeader{Version: Version1, Type: TypeInitial, DCID: []byte{0xaa, 0xbb}, SCID: []byte{0xcc}, Token: []byte("tk"), PNOffset: 14, Len: 17},
		},
		{name: "v1 Handshake", in: long(0xe0, v1, 0, 0, 1, 0), want: LongHeader{Version: Version1, Type: TypeHandshake, PNOffset: 8, Len: 9}},
		{name: "v1 0-RTT", in: long(0xd0, v1, 0, 0, 0), want: LongHeader{Version: Version1, Type: Type0RTT, PNOffset: 8, Len: 8}},
		{name: "v1 Retry", in: long(0xf0, v1, 0, 1, 9, 'r', 't'), want: LongHeader{Version: Version1, Type: TypeRetry, SCID: []byte{9}, Len: 10}},
		{name: "v2 Initial", in: long(0xd0, v2, 0, 0, 0, 1, 0), want: LongHeader{Version: Version2, Type: TypeInitial, Token: []byte{}, PNOffset: 9, Len: 10}},
		{name: "v2 0-RTT", in: long(0xe0, v2, 0, 0, 0), want: LongHeader{Version: Version2, Type: Type0RTT, PNOffset: 8, Len: 8}},
		{name: "v2 Handshake", in: long(0xf0, v2, 0, 0, 0), want: LongHeader{Version: Version2, Type: TypeHandshake, PNOffset: 8, Len: 8}},
		{name: "v2 Retry", in: long(0xc0, v2, 0, 0, 'r'), want: LongHeader{Version: Version2, Type: TypeRetry, Len: 8}},
		{
			name: "version negotiation", in: long(0x80, []byte{0, 0, 0, 0}, 1, 0xaa, 1, 0xbb, 0, 0, 0, 1), wantErr: ErrVersionNegotiation,
			want: LongHeader{Type: TypeVersionNegotiation, DCID: []byte{0xaa}, SCID: []byte{0xbb}, Len: 13},
		},
		{
			name: "unknown version keeps the invariants", in: long(0xc0, []byte{0xff, 0, 0, 0x1d}, 1, 0xaa, 0, 9, 9), wantErr: ErrUnsupportedVersion,
			want: LongHeader{Version: 0xff00001d, DCID: []byte{0xaa}, Len: 10},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseLongHeader(tt.in)
			if (tt.wantErr == nil) != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && tt.want.Len == 0 {
				return
			}
			if h.Version != tt.want.Version || h.Type != tt.want.Type || !bytes.Equal(h.DCID, tt.want.DCID) ||
				!bytes.Equal(h.SCID, tt.want.SCID) || !bytes.Equal(h.Token, tt.want.Token) ||
				h.PNOffset != tt.want.PNOffset || h.Len != tt.want.Len {
				t.Fatalf("header = %+v\nwant     %+v", h, tt.want)
			}
		})
	}
}

func TestShortHeaderDCID(t *testing.T) {
	pkt := []byte{0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0xff}
	if d, err := ShortHeaderDCID(pkt, 8); err != nil || !bytes.Equal(d, pkt[1:9]) {
		t.Fatalf("DCID = %x, %v", d, err)
	}
	if d, err := ShortHeaderDCID(pkt, 0); err != nil || len(d) != 0 {
		t.Fatalf("empty DCID = %x, %v", d, err)
	}
	for _, tt := range []struct {
		name string
		in   []byte
		n    int
	}{
		{"long header", []byte{0xc0, 1, 2}, 1},
		{"empty", nil, 0},
		{"shorter than the CID", pkt[:5], 8},
		{"CID over 20 bytes", make([]byte, 30), 21},
		{"negative", pkt, -1},
	} {
		if _, err := ShortHeaderDCID(tt.in, tt.n); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tt.name, err)
		}
	}
}
