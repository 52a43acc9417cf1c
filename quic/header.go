package quic

import (
	"errors"
	"fmt"
)

// QUIC versions whose Initial packets this package can open.
const (
	// Version1 is QUIC version 1 (RFC 9000).
	Version1 uint32 = 0x00000001
	// Version2 is QUIC version 2 (RFC 9369).
	Version2 uint32 = 0x6b3343cf
)

// MaxCIDLen is the longest connection ID QUIC v1 and v2 allow (RFC 9000
// §17.2). Unknown versions may carry up to 255 bytes (RFC 8999 §5.1).
const MaxCIDLen = 20

// PacketType is the type of a long-header packet, independent of the
// version's encoding of it (RFC 9000 §17.2 and RFC 9369 §3.2 differ).
type PacketType uint8

// Long-header packet types.
const (
	TypeUnknown PacketType = iota // a version this package does not know
	TypeInitial
	Type0RTT
	TypeHandshake
	TypeRetry
	TypeVersionNegotiation
)

func (t PacketType) String() string {
	switch t {
	case TypeInitial:
		return "Initial"
	case Type0RTT:
		return "0-RTT"
	case TypeHandshake:
		return "Handshake"
	case TypeRetry:
		return "Retry"
	case TypeVersionNegotiation:
		return "VersionNegotiation"
	default:
		return "unknown"
	}
}

// Errors of the parsers. Test with errors.Is; details are wrapped.
var (
	// ErrMalformed: the bytes are not a well-formed QUIC packet.
	ErrMalformed = errors.New("quic: malformed packet")
	// ErrNotLongHeader: the first packet has a short header (or the fixed
	// bit is clear where the version requires it).
	ErrNotLongHeader = errors.New("quic: not a long-header packet")
	// ErrNotInitial: the datagram holds no Initial packet to collect.
	ErrNotInitial = errors.New("quic: no Initial packet")
	// ErrUnsupportedVersion: a long header of a version other than v1 and
	// v2; its invariant fields (RFC 8999) are still parsed.
	ErrUnsupportedVersion = errors.New("quic: unsupported version")
	// ErrVersionNegotiation: a Version Negotiation packet (version 0),
	// which only servers send.
	ErrVersionNegotiation = errors.New("quic: version negotiation packet")
	// ErrDecrypt: an Initial packet failed authentication; per RFC 9001
	// §5.3 such a packet is discarded, the connection goes on.
	ErrDecrypt = errors.New("quic: Initial packet failed to decrypt")
	// ErrProtocolViolation: a decrypted Initial breaks RFC 9000 (a frame
	// type not allowed in Initial packets, reserved bits set, CRYPTO data
	// that contradicts itself).
	ErrProtocolViolation = errors.New("quic: protocol violation")
	// ErrTooLarge: the CRYPTO data passes Collector.MaxCryptoData.
	ErrTooLarge = errors.New("quic: CRYPTO data too large")
	// ErrTooFragmented: the CRYPTO data has more holes than the Collector
	// tracks (MaxFragments). It wraps ErrTooLarge.
	ErrTooFragmented = fmt.Errorf("%w: too many CRYPTO fragments", ErrTooLarge)
)

// LongHeader is a parsed long header (RFC 9000 §17.2). Its slices alias
// the parsed packet.
type LongHeader struct {
	Version uint32
	Type    PacketType
	// TypeBits is the raw two type bits of the first byte, which header
	// protection leaves clear (RFC 9001 §5.4.1).
	TypeBits byte
	DCID     []byte
	SCID     []byte
	// Token is the Initial packet's token (empty if none); nil for other
	// types.
	Token []byte
	// PNOffset is where the (protected) packet number starts, for Initial,
	// 0-RTT and Handshake packets.
	PNOffset int
	// Len is the whole packet's length in bytes: the datagram may hold more
	// packets after it (RFC 9000 §12.2). A Retry, Version Negotiation or
	// unknown-version packet extends to the end of the datagram.
	Len int
}

// IsLongHeader reports whether b starts with a long-header packet (the
// header form bit, RFC 8999 §5.1).
func IsLongHeader(b []byte) bool { return len(b) > 0 && b[0]&0x80 != 0 }

// packetType maps the type bits of a v1 or v2 long header.
func packetType(version uint32, bits byte) PacketType {
	switch version {
	case Version1:
		return [4]PacketType{TypeInitial, Type0RTT, TypeHandshake, TypeRetry}[bits]
	case Version2: // RFC 9369 §3.2
		return [4]PacketType{TypeRetry, TypeInitial, Type0RTT, TypeHandshake}[bits]
	}
	return TypeUnknown
}

// ParseLongHeader parses the long header of the first packet in b. For an
// unknown version it fills Version, DCID, SCID and Len (the invariants of
// RFC 8999) and returns ErrUnsupportedVersion; for a Version Negotiation
// packet, the same and ErrVersionNegotiation. It does not allocate.
func ParseLongHeader(b []byte) (LongHeader, error) {
	var h LongHeader
	if len(b) == 0 || b[0]&0x80 == 0 {
		return h, ErrNotLongHeader
	}
	if len(b) < 7 {
		return h, malformed("long header of %d bytes", len(b))
	}
	h.Version = uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4])
	off := 5
	var ok bool
	if h.DCID, off, ok = readCID(b, off); !ok {
		return h, malformed("destination connection ID length")
	}
	if h.SCID, off, ok = readCID(b, off); !ok {
		return h, malformed("source connection ID length")
	}
	h.Len = len(b)
	if h.Version == 0 {
		h.Type = TypeVersionNegotiation
		return h, ErrVersionNegotiation
	}
	h.TypeBits = b[0] >> 4 & 3
	h.Type = packetType(h.Version, h.TypeBits)
	if h.Type == TypeUnknown {
		return h, fmt.Errorf("%w %#08x", ErrUnsupportedVersion, h.Version)
	}
	if len(h.DCID) > MaxCIDLen || len(h.SCID) > MaxCIDLen {
		return h, malformed("connection ID longer than %d bytes", MaxCIDLen)
	}
	// RFC 9000 §17.2: the fixed bit is 1 in v1 and v2 packets (RFC 9287's
	// greasing is negotiated, and never for a client's first flight).
	if b[0]&0x40 == 0 {
		return h, fmt.Errorf("%w: fixed bit clear", ErrNotLongHeader)
	}
	if h.Type == TypeRetry {
		return h, nil
	}
	if h.Type == TypeInitial {
		n, w := varint(b[off:])
		if w == 0 || uint64(len(b)-off-w) < n {
			return h, malformed("token length")
		}
		off += w
		h.Token = b[off : off+int(n) : off+int(n)]
		off += int(n)
	}
	n, w := varint(b[off:])
	if w == 0 {
		return h, malformed("length field")
	}
	off += w
	if uint64(len(b)-off) < n {
		return h, malformed("length %d past the datagram's %d bytes", n, len(b)-off)
	}
	h.PNOffset = off
	h.Len = off + int(n)
	return h, nil
}

// readCID reads a 1-byte length and that many bytes at b[off:].
func readCID(b []byte, off int) ([]byte, int, bool) {
	if off >= len(b) {
		return nil, 0, false
	}
	n := int(b[off])
	off++
	if len(b)-off < n {
		return nil, 0, false
	}
	return b[off : off+n : off+n], off + n, true
}

// ShortHeaderDCID returns the Destination Connection ID of a short-header
// packet (RFC 9000 §17.3) whose connection IDs are cidLen bytes long: the
// length is not on the wire, the receiver must know it.
func ShortHeaderDCID(b []byte, cidLen int) ([]byte, error) {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return nil, fmt.Errorf("%w: not a short-header packet", ErrMalformed)
	}
	if cidLen < 0 || cidLen > MaxCIDLen || len(b) < 1+cidLen {
		return nil, malformed("short header of %d bytes for a %d-byte connection ID", len(b), cidLen)
	}
	return b[1 : 1+cidLen : 1+cidLen], nil
}

// varint decodes a QUIC variable-length integer (RFC 9000 §16); w is the
// number of bytes read, 0 if b is too short.
func varint(b []byte) (v uint64, w int) {
	if len(b) == 0 {
		return 0, 0
	}
	w = 1 << (b[0] >> 6)
	if len(b) < w {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for _, c := range b[1:w] {
		v = v<<8 | uint64(c)
	}
	return v, w
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
