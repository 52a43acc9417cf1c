package quic

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// readHex reads a file of hex lines, one datagram per line; blank lines
// and lines starting with # are skipped.
func readHex(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// typeBits encodes an Initial's type bits for a version.
func initialTypeBits(version uint32) byte {
	if version == Version2 {
		return 1
	}
	return 0
}

// initialSpec describes a client Initial to build with sealInitial.
type initialSpec struct {
	version  uint32
	dcid     []byte
	testSCID []byte
	token    []byte
	pn       uint64
	pnLen    int // 1..4; 0 means 2
	payload  []byte
	padTo    int // pad the payload with PADDING so the packet is this long
	// reserved sets the reserved header bits (RFC 9000 §17.2) before
	// protection, which a receiver must reject.
	reserved bool
}

// sealInitial builds a protected client Initial packet (RFC 9001 §5), the
// inverse of Collector.open, for tests that need Initials of any shape.
func sealInitial(t testing.TB, p initialSpec) []byte {
	t.Helper()
	if p.pnLen == 0 {
		p.pnLen = 2
	}
	if p.version == 0 {
		p.version = Version1
	}
	payload := p.payload
	hdr := []byte{0xc0 | initialTypeBits(p.version)<<4 | byte(p.pnLen-1)}
	if p.reserved {
		hdr[0] |= 0x0c
	}
	hdr = binary.BigEndian.AppendUint32(hdr, p.version)
	hdr = append(hdr, byte(len(p.dcid)))
	hdr = append(hdr, p.dcid...)
	hdr = append(hdr, byte(len(p.testSCID)))
	hdr = append(hdr, p.testSCID...)
	hdr = appendTestVarint(hdr, uint64(len(p.token)))
	hdr = append(hdr, p.token...)
	// Length in the 2-byte form, so padding can be computed up front.
	fixed := len(hdr) + 2 + p.pnLen + 16
	if n := p.padTo - fixed - len(payload); n > 0 {
		payload = append(append([]byte(nil), payload...), make([]byte, n)...)
	}
	for len(payload)+p.pnLen < 4 { // the header protection sample needs room
		payload = append(payload, 0)
	}
	length := p.pnLen + len(payload) + 16
	hdr = append(hdr, 0x40|byte(length>>8), byte(length))
	pnOff := len(hdr)
	for i := p.pnLen - 1; i >= 0; i-- {
		hdr = append(hdr, byte(p.pn>>(8*i)))
	}
	s := deriveClientInitial(p.version, p.dcid)
	block, _ := aes.NewCipher(s.key[:])
	aead, _ := cipher.NewGCM(block)
	nonce := s.iv
	for i := range 8 {
		nonce[4+i] ^= byte(p.pn >> (56 - 8*i))
	}
	pkt := aead.Seal(bytes.Clone(hdr), nonce[:], payload, hdr)
	hp, _ := aes.NewCipher(s.hp[:])
	var mask [16]byte
	hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	for i := range p.pnLen {
		pkt[pnOff+i] ^= mask[1+i]
	}
	return pkt
}

func appendTestVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v))
	case v < 1<<30:
		return binary.BigEndian.AppendUint32(b, 0x80<<24|uint32(v))
	default:
		return binary.BigEndian.AppendUint64(b, 0xc0<<56|v)
	}
}

// cryptoFrame encodes a CRYPTO frame.
func cryptoFrame(off int, data []byte) []byte {
	b := appendTestVarint([]byte{frameCrypto}, uint64(off))
	b = appendTestVarint(b, uint64(len(data)))
	return append(b, data...)
}

// buildHello encodes a ClientHello handshake message (type, 3-byte length,
// body) with SNI and ALPN, padded by a padding extension (RFC 7685) of
// extra bytes so tests can make it span several packets.
func buildHello(sni string, alpn []string, extra int) []byte {
	var exts []byte
	ext := func(typ uint16, body []byte) {
		exts = binary.BigEndian.AppendUint16(exts, typ)
		exts = binary.BigEndian.AppendUint16(exts, uint16(len(body)))
		exts = append(exts, body...)
	}
	if sni != "" {
		var b []byte
		b = binary.BigEndian.AppendUint16(b, uint16(3+len(sni)))
		b = append(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(sni)))
		ext(0, append(b, sni...))
	}
	if len(alpn) > 0 {
		var l []byte
		for _, p := range alpn {
			l = append(append(l, byte(len(p))), p...)
		}
		ext(16, append(binary.BigEndian.AppendUint16(nil, uint16(len(l))), l...))
	}
	ext(43, []byte{2, 0x03, 0x04}) // supported_versions: TLS 1.3
	if extra > 0 {
		ext(21, make([]byte, extra))
	}
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // cipher suites
	body = append(body, 1, 0)                // compression
	body = binary.BigEndian.AppendUint16(body, uint16(len(exts)))
	body = append(body, exts...)
	return append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}
