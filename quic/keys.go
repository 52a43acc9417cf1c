package quic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
)

// Initial salts: RFC 9001 §5.2 and RFC 9369 §3.3.1.
var (
	saltV1 = [20]byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2 = [20]byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
)

// initialSecrets are the client's Initial secret and the packet protection
// material derived from it (RFC 9001 §5.1, RFC 9369 §3.3.2).
type initialSecrets struct {
	secret [32]byte
	key    [16]byte
	iv     [12]byte
	hp     [16]byte
}

// deriveClientInitial computes the client Initial secrets for a version
// (v1 or v2) and the client's original Destination Connection ID. It does
// not allocate: HKDF-SHA256 is computed with sha256.Sum256 on stack buffers,
// because crypto/hkdf returns fresh slices and Collector aims at zero
// allocations per datagram.
func deriveClientInitial(version uint32, dcid []byte) (s initialSecrets) {
	salt, labelKey, labelIV, labelHP := saltV1[:], "quic key", "quic iv", "quic hp"
	if version == Version2 {
		salt, labelKey, labelIV, labelHP = saltV2[:], "quicv2 key", "quicv2 iv", "quicv2 hp"
	}
	initial := hmacSHA256(salt, dcid, nil) // HKDF-Extract(salt, IKM)
	s.secret = expandLabel(&initial, "client in", 32)
	copy(s.key[:], expandLabelSlice(&s.secret, labelKey, 16))
	copy(s.iv[:], expandLabelSlice(&s.secret, labelIV, 12))
	copy(s.hp[:], expandLabelSlice(&s.secret, labelHP, 16))
	return s
}

func expandLabelSlice(secret *[32]byte, label string, n int) []byte {
	out := expandLabel(secret, label, n)
	return out[:n]
}

// expandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an empty
// context, for outputs of at most one SHA-256 block.
func expandLabel(secret *[32]byte, label string, n int) [32]byte {
	// HkdfLabel = uint16 length, opaque label<7..255> = "tls13 " + label,
	// opaque context<0..255> = ""; then T(1) = HMAC(PRK, info || 0x01).
	var info [2 + 1 + 6 + 32 + 1 + 1]byte
	i := 0
	info[i], info[i+1], info[i+2] = byte(n>>8), byte(n), byte(6+len(label))
	i += 3
	i += copy(info[i:], "tls13 ")
	i += copy(info[i:], label)
	info[i] = 0 // context length
	info[i+1] = 1
	return hmacSHA256(secret[:], info[:i+2], nil)
}

// hmacSHA256 computes HMAC-SHA256(key, a || b) (RFC 2104) for keys of at
// most one block and messages of at most 64 bytes, without allocating.
func hmacSHA256(key, a, b []byte) [32]byte {
	var buf [64 + 64]byte
	for i := range 64 {
		buf[i] = 0x36
	}
	for i, c := range key {
		buf[i] ^= c
	}
	n := 64 + copy(buf[64:], a)
	n += copy(buf[n:], b)
	inner := sha256.Sum256(buf[:n])
	for i := range 64 {
		buf[i] ^= 0x36 ^ 0x5c
	}
	copy(buf[64:], inner[:])
	return sha256.Sum256(buf[:64+32])
}

// openKeys are the ciphers to open one connection's client Initials.
type openKeys struct {
	aead cipher.AEAD
	hp   cipher.Block
	iv   [12]byte
	// what the keys were derived from, so a reused Collector can keep them
	version uint32
	dcid    [MaxCIDLen]byte
	dcidLen int
	ok      bool
}

// set derives the keys for version and dcid unless it holds them already.
// Only this allocates (the AES and GCM states), once per connection.
func (k *openKeys) set(version uint32, dcid []byte) error {
	if k.ok && k.version == version && string(k.dcid[:k.dcidLen]) == string(dcid) {
		return nil
	}
	k.ok = false
	s := deriveClientInitial(version, dcid)
	block, err := aes.NewCipher(s.key[:])
	if err != nil {
		return fmt.Errorf("quic: Initial key: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return fmt.Errorf("quic: Initial AEAD: %w", err)
	}
	if k.hp, err = aes.NewCipher(s.hp[:]); err != nil {
		return fmt.Errorf("quic: Initial header protection key: %w", err)
	}
	k.iv = s.iv
	k.version = version
	k.dcidLen = copy(k.dcid[:], dcid)
	k.ok = true
	return nil
}
