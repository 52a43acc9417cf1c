package quic

import (
	"errors"
	"fmt"

	"github.com/proxynow/proxynow/tlsmux"
)

// MinInitialDatagram is the smallest UDP payload that may carry a client's
// Initial packet (RFC 9000 §14.1); servers discard smaller ones.
const MinInitialDatagram = 1200

// ErrOtherConnection: an Initial whose Destination Connection ID or version
// differs from the first one the Collector opened; it is ignored (RFC 9000
// §12.2 for coalesced packets; across datagrams it can only be a client
// that gave up on its first attempt, or forged).
var ErrOtherConnection = errors.New("quic: Initial of another connection")

// Collector gathers a client's ClientHello from its Initial packets: it
// opens each Initial (RFC 9001 §5), walks its frames and reassembles the
// CRYPTO stream until the TLS handshake message is complete.
//
// Errors from Add are of two kinds. ErrNotInitial, ErrMalformed, ErrDecrypt,
// ErrUnsupportedVersion, ErrVersionNegotiation and ErrOtherConnection
// concern one datagram, which was ignored (packets before the bad one in a
// coalesced datagram were used); Add may go on. Any other error
// (ErrProtocolViolation, ErrTooLarge, a tlsmux parse error) is fatal: the
// hello cannot be completed, Err reports it and every later Add returns it.
//
// A Collector is not safe for concurrent use. The zero value is ready; Reset
// makes it reusable, keeping its buffers and, when the next connection has
// the same original DCID, its keys.
type Collector struct {
	// MaxCryptoData bounds the CRYPTO stream collected (highest offset +
	// length), in bytes; 0 means DefaultMaxCryptoData (64 KiB).
	MaxCryptoData int

	keys      openKeys
	started   bool
	version   uint32
	dcid      [MaxCIDLen]byte
	dcidLen   int
	largestPN int64
	crypto    cryptoStream
	msgLen    int // the ClientHello's length with its header; 0 until known
	packets   int
	done      bool
	err       error
	hello     tlsmux.ClientHello
	scratch   []byte
	// mask and nonce live here, not on the stack: passed to the cipher
	// interfaces they would escape, one allocation each per packet.
	mask  [16]byte
	nonce [12]byte
}

// Reset forgets the connection collected so far.
func (c *Collector) Reset() {
	c.started, c.done, c.err = false, false, nil
	c.version, c.dcidLen, c.msgLen, c.packets = 0, 0, 0, 0
	c.crypto.reset()
	c.hello = tlsmux.ClientHello{}
}

// Hello returns the parsed ClientHello once Add has reported done, else
// nil. Its slices alias the Collector's buffer: valid until Reset.
func (c *Collector) Hello() *tlsmux.ClientHello {
	if !c.done {
		return nil
	}
	return &c.hello
}

// Err is the fatal error that stopped the Collector, or nil.
func (c *Collector) Err() error { return c.err }

// Version is the QUIC version of the Initials collected, 0 before the
// first one.
func (c *Collector) Version() uint32 { return c.version }

// DCID is the client's original Destination Connection ID, nil before the
// first Initial. It aliases the Collector.
func (c *Collector) DCID() []byte {
	if !c.started {
		return nil
	}
	return c.dcid[:c.dcidLen]
}

// Packets is the number of Initial packets opened so far.
func (c *Collector) Packets() int { return c.packets }

// Add feeds one UDP datagram from the client; done reports that the
// ClientHello is complete (Hello returns it). After done, Add ignores its
// input. Add does not modify datagram and, with a reused Collector that has
// grown its buffers and whose connection's keys are already derived, does
// not allocate.
func (c *Collector) Add(datagram []byte) (done bool, err error) {
	if c.done {
		return true, nil
	}
	if c.err != nil {
		return false, c.err
	}
	var first []byte // DCID of the datagram's first packet
	opened := false
	for b := datagram; len(b) > 0 && !c.done; {
		if !IsLongHeader(b) {
			break // a 1-RTT packet ends the datagram (RFC 9000 §12.2)
		}
		h, err := ParseLongHeader(b)
		if err != nil {
			if first == nil {
				return false, err
			}
			break // junk after a good packet is ignored, like quic-go does
		}
		if first == nil {
			first = h.DCID
		} else if string(h.DCID) != string(first) {
			break // RFC 9000 §12.2: receivers SHOULD ignore such packets
		}
		if h.Type != TypeInitial {
			b = b[h.Len:] // 0-RTT coalesced after the Initial, or Retry/VN
			continue
		}
		if c.started && (h.Version != c.version || string(h.DCID) != string(c.dcid[:c.dcidLen])) {
			return false, ErrOtherConnection
		}
		if err := c.open(b[:h.Len], &h); err != nil {
			if errors.Is(err, ErrDecrypt) || errors.Is(err, ErrMalformed) {
				if opened {
					return c.done, nil // keep what the good packets gave
				}
				return false, err
			}
			c.err = err
			return false, err
		}
		opened = true
		b = b[h.Len:]
	}
	if !opened && !c.done {
		return false, ErrNotInitial
	}
	return c.done, nil
}

// open removes the protection of one Initial packet and takes its frames.
func (c *Collector) open(pkt []byte, h *LongHeader) error {
	pn := h.PNOffset
	// The header protection sample starts 4 bytes after the packet number
	// offset (RFC 9001 §5.4.2), and the payload holds at least the tag.
	if len(pkt)-pn < 4+16 {
		return malformed("Initial packet of %d bytes too short for header protection", len(pkt))
	}
	if err := c.keys.set(h.Version, h.DCID); err != nil {
		return err
	}
	if cap(c.scratch) < len(pkt) {
		c.scratch = make([]byte, max(len(pkt), 1500))
	}
	s := c.scratch[:len(pkt)]
	copy(s, pkt)
	mask := &c.mask
	c.keys.hp.Encrypt(mask[:], s[pn+4:pn+4+16])
	s[0] ^= mask[0] & 0x0f // long header: 4 low bits protected
	pnLen := int(s[0]&3) + 1
	var truncated uint64
	for i := range pnLen {
		s[pn+i] ^= mask[1+i]
		truncated = truncated<<8 | uint64(s[pn+i])
	}
	largest := int64(-1)
	if c.started {
		largest = c.largestPN
	}
	num := decodePacketNumber(largest, truncated, pnLen)
	nonce := &c.nonce
	*nonce = c.keys.iv
	for i := range 8 {
		nonce[4+i] ^= byte(num >> (56 - 8*i))
	}
	hdr := pn + pnLen
	payload, err := c.keys.aead.Open(s[hdr:hdr], nonce[:], s[hdr:], s[:hdr])
	if err != nil {
		return fmt.Errorf("%w: packet number %d", ErrDecrypt, num)
	}
	// Authentic from here on: what is wrong now is the client's doing.
	if !c.started {
		c.started = true
		c.version = h.Version
		c.dcidLen = copy(c.dcid[:], h.DCID)
		c.largestPN = num
	}
	c.largestPN = max(c.largestPN, num)
	c.packets++
	if s[0]&0x0c != 0 { // RFC 9000 §17.2: reserved bits
		return fmt.Errorf("%w: reserved header bits set", ErrProtocolViolation)
	}
	return c.frames(payload)
}

// decodePacketNumber recovers a full packet number from its truncated
// encoding (RFC 9000 §17.1 and Appendix A.3).
func decodePacketNumber(largest int64, truncated uint64, pnLen int) int64 {
	expected := largest + 1
	win := int64(1) << (8 * pnLen)
	hwin, mask := win/2, win-1
	candidate := expected&^mask | int64(truncated)
	switch {
	case candidate <= expected-hwin && candidate < 1<<62-win:
		return candidate + win
	case candidate > expected+hwin && candidate >= win:
		return candidate - win
	}
	return candidate
}

// Frame types allowed in a client's Initial packets (RFC 9000 §12.4,
// Table 3). Anything else is a PROTOCOL_VIOLATION.
const (
	framePadding         = 0x00
	framePing            = 0x01
	frameAck             = 0x02
	frameAckECN          = 0x03
	frameCrypto          = 0x06
	frameConnectionClose = 0x1c
)

// frames walks a decrypted Initial payload.
func (c *Collector) frames(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: Initial packet without frames", ErrProtocolViolation) // RFC 9000 §12.4
	}
	for len(p) > 0 && !c.done {
		typ, w := varint(p)
		if w == 0 {
			return frameErr("frame type")
		}
		p = p[w:]
		var ok bool
		switch typ {
		case framePadding:
			for len(p) > 0 && p[0] == 0 {
				p = p[1:]
			}
			ok = true
		case framePing:
			ok = true
		case frameAck, frameAckECN:
			p, ok = skipAck(p, typ == frameAckECN)
		case frameConnectionClose:
			// error code, frame type, reason phrase (RFC 9000 §19.19)
			if p, ok = skipVarints(p, 2); ok {
				var n uint64
				if n, w = varint(p); w != 0 && uint64(len(p)-w) >= n {
					p = p[w+int(n):]
				} else {
					ok = false
				}
			}
		case frameCrypto:
			var err error
			if p, err = c.cryptoFrame(p); err != nil {
				return err
			}
			ok = true
		default:
			return fmt.Errorf("%w: frame type %#x in an Initial packet", ErrProtocolViolation, typ)
		}
		if !ok {
			return frameErr(fmt.Sprintf("frame type %#x", typ))
		}
	}
	return nil
}

// frameErr is FRAME_ENCODING_ERROR, reported as a protocol violation: the
// packet was authentic, so the client is broken, not the network.
func frameErr(what string) error {
	return fmt.Errorf("%w: truncated or malformed %s", ErrProtocolViolation, what)
}

func skipVarints(p []byte, n int) ([]byte, bool) {
	for range n {
		_, w := varint(p)
		if w == 0 {
			return nil, false
		}
		p = p[w:]
	}
	return p, true
}

// skipAck skips an ACK frame body (RFC 9000 §19.3).
func skipAck(p []byte, ecn bool) ([]byte, bool) {
	// Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range.
	var count uint64
	for i := range 4 {
		v, w := varint(p)
		if w == 0 {
			return nil, false
		}
		if i == 2 {
			count = v
		}
		p = p[w:]
	}
	// Each range is two varints of at least a byte: a count past what is
	// left cannot be honest, and must not spin the loop.
	if count > uint64(len(p)/2) {
		return nil, false
	}
	p, ok := skipVarints(p, 2*int(count))
	if ok && ecn {
		p, ok = skipVarints(p, 3)
	}
	return p, ok
}

// cryptoFrame takes a CRYPTO frame body (RFC 9000 §19.6) and returns what
// follows it.
func (c *Collector) cryptoFrame(p []byte) ([]byte, error) {
	off, w := varint(p)
	if w == 0 {
		return nil, frameErr("CRYPTO offset")
	}
	p = p[w:]
	n, w := varint(p)
	if w == 0 || uint64(len(p)-w) < n {
		return nil, frameErr("CRYPTO length")
	}
	data := p[w : w+int(n)]
	p = p[w+int(n):]
	limit := c.MaxCryptoData
	if limit <= 0 {
		limit = DefaultMaxCryptoData
	}
	if c.msgLen > 0 {
		// Bytes past the hello are not needed; a client sends none in
		// Initials, but they must not be held either.
		if off >= uint64(c.msgLen) {
			return p, nil
		}
		data = data[:min(uint64(len(data)), uint64(c.msgLen)-off)]
	}
	if err := c.crypto.write(off, data, limit); err != nil {
		return nil, fmt.Errorf("CRYPTO frame at offset %d, %d bytes (max %d): %w", off, n, limit, err)
	}
	have := c.crypto.contiguous()
	if c.msgLen == 0 && have >= 4 {
		b := c.crypto.buf
		if b[0] != 1 { // client_hello
			return nil, fmt.Errorf("%w: handshake message type %d in Initial CRYPTO data, want client_hello", ErrProtocolViolation, b[0])
		}
		c.msgLen = 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
		if c.msgLen > limit {
			return nil, fmt.Errorf("ClientHello of %d bytes (max %d): %w", c.msgLen, limit, ErrTooLarge)
		}
	}
	if c.msgLen > 0 && have >= c.msgLen {
		if err := tlsmux.ParseHandshake(c.crypto.buf[:c.msgLen], &c.hello); err != nil {
			return nil, fmt.Errorf("quic: ClientHello: %w", err)
		}
		c.done = true
	}
	return p, nil
}
