package tlsmux

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits of the ClientHello parser.
const (
	// MaxHelloSize bounds a ClientHello handshake message, its 4-byte header
	// included, in bytes. Hellos with post-quantum key shares are ~1.8 KiB;
	// anything past 64 KiB is treated as abuse.
	MaxHelloSize = 64 << 10
	// MaxALPN is how many ALPN protocol names are kept; later ones are
	// validated but ignored.
	MaxALPN = 16
	// MaxVersions is how many supported_versions entries are kept; later
	// ones are validated but ignored.
	MaxVersions = 16
)

const (
	recordHeaderLen     = 5
	maxRecordLen        = 1<<14 + 256 // RFC 5246 §6.2.3, the most a peer may send
	recordTypeHandshake = 22
	typeClientHello     = 1

	extServerName        = 0
	extALPN              = 16
	extPreSharedKey      = 41
	extSupportedVersions = 43
)

// Errors returned by ParseRecords and ParseHandshake. Malformed input is
// reported as ErrMalformed wrapped with a detail; test with errors.Is.
var (
	// ErrNotTLS: the stream does not start with a TLS handshake record
	// (first byte not 22, or record version not 3.x with x <= 4).
	ErrNotTLS = errors.New("tlsmux: not a TLS handshake record")
	// ErrSSLv2 is an SSLv2-compatible ClientHello (RFC 5246 Appendix E.2),
	// which nothing routable sends any more. It wraps ErrNotTLS, so callers
	// that test only ErrNotTLS treat it as non-TLS bytes.
	ErrSSLv2 = fmt.Errorf("%w: SSLv2-compatible ClientHello", ErrNotTLS)
	// ErrIncomplete: the input ends before the ClientHello does.
	ErrIncomplete = errors.New("tlsmux: incomplete ClientHello")
	// ErrMalformed: the bytes are a TLS handshake but not a valid ClientHello.
	ErrMalformed = errors.New("tlsmux: malformed ClientHello")
	// ErrTooLarge: the ClientHello is longer than MaxHelloSize.
	ErrTooLarge = errors.New("tlsmux: ClientHello too large")
	// ErrNeedScratch: the ClientHello spans several records and scratch is
	// too small to reassemble it; retry with cap(scratch) >= MaxHelloSize.
	// It wraps ErrTooLarge.
	ErrNeedScratch = fmt.Errorf("%w: scratch buffer too small to reassemble fragmented ClientHello", ErrTooLarge)
)

// ClientHello holds what routing needs from a TLS ClientHello. Its byte
// slices alias the parsed input (data or scratch): copy them to keep them
// past the next change of that buffer. The zero value is an empty hello.
type ClientHello struct {
	// LegacyVersion is legacy_version, 0x0303 for TLS 1.2 and 1.3 clients.
	LegacyVersion uint16
	// ServerName is the SNI host_name exactly as sent (not lower-cased,
	// trailing dot kept), or nil if the client sent none.
	ServerName []byte

	alpn      [MaxALPN][]byte
	nALPN     int
	versions  [MaxVersions]uint16
	nVersions int
}

// ALPN returns the offered protocol names in the client's order, at most
// MaxALPN of them; empty if the extension is absent.
func (h *ClientHello) ALPN() [][]byte { return h.alpn[:h.nALPN:h.nALPN] }

// SupportedVersions returns the supported_versions extension's entries
// (GREASE included) in the client's order, at most MaxVersions of them.
func (h *ClientHello) SupportedVersions() []uint16 { return h.versions[:h.nVersions:h.nVersions] }

// OffersALPN reports whether the client offers protocol p.
func (h *ClientHello) OffersALPN(p string) bool {
	for _, a := range h.alpn[:h.nALPN] {
		if string(a) == p {
			return true
		}
	}
	return false
}

// MaxVersion returns the highest version in supported_versions, ignoring
// GREASE values (RFC 8701), or LegacyVersion if there is none.
func (h *ClientHello) MaxVersion() uint16 {
	var best uint16
	for _, v := range h.versions[:h.nVersions] {
		if !isGREASE(v) && v > best {
			best = v
		}
	}
	if best == 0 {
		return h.LegacyVersion
	}
	return best
}

// isGREASE reports whether v is one of 0x0a0a, 0x1a1a, ... 0xfafa (RFC 8701).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// ParseRecords parses the ClientHello at the start of the TLS record stream
// data (the bytes peeked so far) into h. It does not allocate unless it
// returns an error other than ErrIncomplete.
//
// When the hello spans several records its fragments are concatenated into
// scratch[:cap(scratch)], and h's slices alias scratch; cap(scratch) >=
// MaxHelloSize always suffices, and a nil scratch is fine for the common
// single-record hello (ErrNeedScratch tells when it is not). Bytes after
// the hello are ignored. Records must arrive whole.
//
// On ErrIncomplete, need is the smallest len(data) that could parse further
// (always > len(data)); otherwise need is 0. A stream whose first byte is
// not 22 gives ErrNotTLS (an alert record first too), or ErrSSLv2 once 3
// bytes show an SSLv2 CLIENT-HELLO.
func ParseRecords(data, scratch []byte, h *ClientHello) (need int, err error) {
	*h = ClientHello{}
	if len(data) == 0 {
		return recordHeaderLen, ErrIncomplete
	}
	if data[0] != recordTypeHandshake {
		// SSLv2 2-byte record header, then msg_type CLIENT-HELLO(1).
		if data[0]&0x80 != 0 && len(data) >= 3 && data[2] == typeClientHello {
			return 0, ErrSSLv2
		}
		return 0, ErrNotTLS
	}
	if len(data) >= 2 && data[1] != 3 || len(data) >= 3 && data[2] > 4 {
		return 0, ErrNotTLS
	}
	buf := scratch[:0]
	msgLen := -1 // the whole handshake message's length, once known
	for off := 0; ; {
		if off > 0 && off < len(data) && data[off] != recordTypeHandshake {
			return 0, malformed("record type %d before the ClientHello is complete", data[off])
		}
		if len(data)-off < recordHeaderLen {
			return off + recordHeaderLen + max(msgLen-len(buf), 0), ErrIncomplete
		}
		if data[off+1] != 3 || data[off+2] > 4 {
			return 0, malformed("record version %#04x", int(data[off+1])<<8|int(data[off+2]))
		}
		n := int(data[off+3])<<8 | int(data[off+4])
		if n == 0 || n > maxRecordLen {
			return 0, malformed("record length %d", n)
		}
		end := off + recordHeaderLen + n
		frag := data[off+recordHeaderLen : min(end, len(data))]
		if off == 0 {
			// Fail fast on a first record that cannot start a hello.
			ml, err := msgHeader(frag)
			if err != nil && err != ErrIncomplete {
				return 0, err
			}
			if err == nil {
				msgLen = ml
				if ml > n && ml > cap(buf) {
					return 0, ErrNeedScratch
				}
			}
		}
		if len(data) < end {
			// The least length that could complete the hello: the rest in
			// this record, or in one more after it.
			if r := msgLen - len(buf); msgLen >= 0 && r > n {
				return end + recordHeaderLen + r - n, ErrIncomplete
			}
			return end, ErrIncomplete
		}
		off = end
		if len(buf) == 0 && msgLen >= 0 && msgLen <= len(frag) {
			return 0, parseMessage(frag[:msgLen], h) // the common case: one record
		}
		for len(frag) > 0 {
			want := 4 - len(buf)
			if msgLen >= 0 {
				want = msgLen - len(buf)
			}
			if want == 0 {
				break // bytes after the hello
			}
			k := min(want, len(frag))
			if len(buf)+k > cap(buf) {
				return 0, ErrNeedScratch
			}
			buf = append(buf, frag[:k]...)
			frag = frag[k:]
			if msgLen < 0 && len(buf) == 4 {
				if msgLen, err = msgHeader(buf); err != nil {
					return 0, err
				}
				if msgLen > cap(buf) {
					return 0, ErrNeedScratch
				}
			}
		}
		if len(buf) == msgLen {
			return 0, parseMessage(buf, h)
		}
	}
}

// ParseHandshake parses msg, a raw handshake message (type client_hello(1),
// 3-byte length, body) as carried in QUIC CRYPTO frames, into h. Bytes after
// the message are ignored. It returns ErrIncomplete if msg is shorter than
// the length its header declares, and does not allocate unless it returns
// another error. h's slices alias msg.
func ParseHandshake(msg []byte, h *ClientHello) error {
	*h = ClientHello{}
	ml, err := msgHeader(msg)
	if err != nil {
		return err
	}
	if len(msg) < ml {
		return ErrIncomplete
	}
	return parseMessage(msg[:ml], h)
}

// msgHeader checks a handshake message header and returns the message's
// whole length, or ErrIncomplete if b is too short to tell.
func msgHeader(b []byte) (int, error) {
	if len(b) >= 1 && b[0] != typeClientHello {
		return 0, malformed("handshake type %d, want client_hello(1)", b[0])
	}
	if len(b) < 4 {
		return 0, ErrIncomplete
	}
	ml := 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
	if ml > MaxHelloSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, ml)
	}
	return ml, nil
}

// parseMessage parses a whole, header-checked handshake message
// (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2).
func parseMessage(msg []byte, h *ClientHello) error {
	b := msg[4:]
	if len(b) < 2+32 {
		return malformed("%d-byte body too short for version and random", len(b))
	}
	h.LegacyVersion = uint16(b[0])<<8 | uint16(b[1])
	b = b[34:]
	v, b, ok := vec8(b)
	if !ok || len(v) > 32 {
		return malformed("legacy_session_id")
	}
	if v, b, ok = vec16(b); !ok || len(v) < 2 || len(v)%2 != 0 {
		return malformed("cipher_suites")
	}
	if v, b, ok = vec8(b); !ok || len(v) < 1 {
		return malformed("legacy_compression_methods")
	}
	if len(b) == 0 {
		return nil // RFC 5246 §7.4.1.2: a hello without extensions
	}
	if v, b, ok = vec16(b); !ok || len(b) != 0 {
		return malformed("extensions block length")
	}
	return parseExtensions(v, h)
}

// maxFastExts is how many extension types are checked for duplicates in a
// small array; a hello with more falls back to dupExtension.
const maxFastExts = 64

func parseExtensions(exts []byte, h *ClientHello) error {
	var (
		filter [1024 / 64]uint64 // type&1023 seen: most hellos never rescan
		types  [maxFastExts]uint16
		n      int
		slow   bool
		psk    bool
	)
	for b := exts; len(b) > 0; {
		if len(b) < 4 {
			return malformed("truncated extension header")
		}
		typ := uint16(b[0])<<8 | uint16(b[1])
		l := int(b[2])<<8 | int(b[3])
		if len(b)-4 < l {
			return malformed("extension %d: length %d past the extensions block", typ, l)
		}
		body := b[4 : 4+l]
		b = b[4+l:]
		if psk {
			return malformed("pre_shared_key is not the last extension") // RFC 8446 §4.2.11
		}
		psk = typ == extPreSharedKey
		// RFC 8446 §4.2: no more than one extension of the same type.
		if !slow {
			bit := typ & 1023
			if filter[bit>>6]&(1<<(bit&63)) != 0 {
				for _, t := range types[:n] {
					if t == typ {
						return malformed("duplicate extension %d", typ)
					}
				}
			}
			filter[bit>>6] |= 1 << (bit & 63)
			if n < len(types) {
				types[n] = typ
				n++
			} else if slow = true; dupExtension(exts) {
				return malformed("duplicate extension")
			}
		}
		var err error
		switch typ {
		case extServerName:
			err = parseServerName(body, h)
		case extALPN:
			err = parseALPN(body, h)
		case extSupportedVersions:
			err = parseSupportedVersions(body, h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dupExtension reports whether the extensions block repeats a type. It is
// the slow path for hellos with very many extensions; a malformed tail is
// left for the caller to report.
//
//go:noinline
func dupExtension(b []byte) bool {
	var seen [65536 / 64]uint64
	for len(b) >= 4 {
		typ := uint16(b[0])<<8 | uint16(b[1])
		if seen[typ>>6]&(1<<(typ&63)) != 0 {
			return true
		}
		seen[typ>>6] |= 1 << (typ & 63)
		b = b[min(len(b), 4+(int(b[2])<<8|int(b[3]))):]
	}
	return false
}

// parseServerName parses server_name (RFC 6066 §3). Like OpenSSL, it admits
// only host_name(0) entries: the format of other types is undefined.
func parseServerName(body []byte, h *ClientHello) error {
	list, rest, ok := vec16(body)
	if !ok || len(rest) != 0 || len(list) == 0 {
		return malformed("server_name list length")
	}
	for len(list) > 0 {
		typ := list[0]
		name, r, ok := vec16(list[1:])
		if !ok {
			return malformed("server_name entry length")
		}
		list = r
		switch {
		case typ != 0:
			return malformed("server_name type %d, want host_name(0)", typ)
		case h.ServerName != nil:
			return malformed("more than one host_name")
		case len(name) == 0 || len(name) > 255:
			return malformed("host_name of %d bytes", len(name))
		case bytes.IndexByte(name, 0) >= 0:
			return malformed("NUL in host_name")
		}
		h.ServerName = name
	}
	return nil
}

// parseALPN parses application_layer_protocol_negotiation (RFC 7301 §3.1).
func parseALPN(body []byte, h *ClientHello) error {
	list, rest, ok := vec16(body)
	if !ok || len(rest) != 0 || len(list) == 0 {
		return malformed("ALPN protocol_name_list length")
	}
	for len(list) > 0 {
		p, r, ok := vec8(list)
		if !ok || len(p) == 0 {
			return malformed("ALPN protocol name length")
		}
		list = r
		if h.nALPN < MaxALPN {
			h.alpn[h.nALPN] = p
			h.nALPN++
		}
	}
	return nil
}

// parseSupportedVersions parses the ClientHello form of supported_versions
// (RFC 8446 §4.2.1): ProtocolVersion versions<2..254>.
func parseSupportedVersions(body []byte, h *ClientHello) error {
	list, rest, ok := vec8(body)
	if !ok || len(rest) != 0 || len(list) < 2 || len(list)%2 != 0 {
		return malformed("supported_versions length")
	}
	for i := 0; i < len(list) && h.nVersions < MaxVersions; i += 2 {
		h.versions[h.nVersions] = uint16(list[i])<<8 | uint16(list[i+1])
		h.nVersions++
	}
	return nil
}

// vec8 splits b into an opaque<0..2^8-1> vector and what follows it. The
// vector's capacity ends with it, so appending to it cannot clobber input.
func vec8(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 1 || len(b)-1 < int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n:n], b[n:], true
}

// vec16 is vec8 for opaque<0..2^16-1>.
func vec16(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := 2 + (int(b[0])<<8 | int(b[1]))
	if len(b) < n {
		return nil, nil, false
	}
	return b[2:n:n], b[n:], true
}

// malformed wraps ErrMalformed with a detail; it runs only on the error path.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
