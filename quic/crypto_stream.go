package quic

// Bounds of the CRYPTO reassembly.
const (
	// DefaultMaxCryptoData is the default of Collector.MaxCryptoData: the
	// most CRYPTO bytes (highest offset + length) collected for one
	// ClientHello, in bytes. It matches tlsmux.MaxHelloSize.
	DefaultMaxCryptoData = 64 << 10
	// MaxFragments is how many disjoint runs of CRYPTO data are held while
	// holes remain; one more is ErrTooFragmented. Real clients send their
	// hello in order, split over 1 to 3 packets, so 16 leaves room for any
	// reordering and none for an attacker's sieve of 1-byte frames.
	MaxFragments = 16
)

// span is a received run [start, end) of the CRYPTO stream.
type span struct{ start, end int }

// cryptoStream reassembles the Initial CRYPTO stream (RFC 9000 §19.6) from
// frames in any order, with duplicates and overlaps.
type cryptoStream struct {
	buf   []byte // len is the highest end written; bytes in holes are stale
	spans [MaxFragments]span
	n     int // spans in use, sorted, disjoint and not adjacent
}

func (s *cryptoStream) reset() {
	s.buf = s.buf[:0]
	s.n = 0
}

// contiguous is the length of the stream's gap-free prefix.
func (s *cryptoStream) contiguous() int {
	if s.n > 0 && s.spans[0].start == 0 {
		return s.spans[0].end
	}
	return 0
}

// write stores data at offset off; limit bounds off+len(data). Data already
// received is overwritten: RFC 9000 §2.2 forbids a peer to change it, and
// the hello is parsed only once, when its prefix is complete.
func (s *cryptoStream) write(off uint64, data []byte, limit int) error {
	if len(data) == 0 {
		return nil
	}
	if off > uint64(limit) || uint64(len(data)) > uint64(limit)-off {
		return ErrTooLarge
	}
	start, end := int(off), int(off)+len(data)
	if err := s.insert(start, end); err != nil {
		return err
	}
	if end > len(s.buf) {
		if end > cap(s.buf) {
			// Amortised growth; a reused Collector keeps its buffer.
			nb := make([]byte, end, min(limit, max(end, 2*cap(s.buf), 4096)))
			copy(nb, s.buf)
			s.buf = nb
		} else {
			s.buf = s.buf[:end]
		}
	}
	copy(s.buf[start:end], data)
	return nil
}

// insert adds [a, b) to the span list, merging what it touches.
func (s *cryptoStream) insert(a, b int) error {
	i := 0
	for i < s.n && s.spans[i].end < a {
		i++
	}
	j := i
	for j < s.n && s.spans[j].start <= b {
		a = min(a, s.spans[j].start)
		b = max(b, s.spans[j].end)
		j++
	}
	switch {
	case i == j: // a new run between spans[i-1] and spans[i]
		if s.n == MaxFragments {
			return ErrTooFragmented
		}
		copy(s.spans[i+1:s.n+1], s.spans[i:s.n])
		s.n++
	case j > i+1: // it bridged several runs
		copy(s.spans[i+1:], s.spans[j:s.n])
		s.n -= j - i - 1
	}
	s.spans[i] = span{a, b}
	return nil
}
