package l4

import "testing"

// TestBatchBuffersApart: a batch's buffers share one allocation, and each
// still takes a whole maximal datagram behind its head room without
// reaching into the next (their capacity ends where they do, so an append
// cannot either).
func TestBatchBuffersApart(t *testing.T) {
	for _, peers := range []bool{true, false} {
		b := makeBatch(peers)
		for i := range b.bufs {
			if len(b.bufs[i]) != headRoom+maxDatagram || cap(b.bufs[i]) != len(b.bufs[i]) {
				t.Fatalf("buffer %d: len %d cap %d, want both %d", i, len(b.bufs[i]), cap(b.bufs[i]), headRoom+maxDatagram)
			}
		}
		for i := range b.bufs {
			for j := range b.bufs[i] {
				b.bufs[i][j] = byte(i + 1)
			}
		}
		for i := range b.bufs {
			for j, c := range b.bufs[i] {
				if c != byte(i+1) {
					t.Fatalf("buffer %d byte %d is %d: another buffer overlaps it", i, j, c)
				}
			}
		}
	}
}
