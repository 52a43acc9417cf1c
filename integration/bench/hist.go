//go:build linux

package main

import (
	"math/bits"
	"sort"
	"time"
)

// histogram records durations in log-linear buckets: 64 per power of two,
// so a percentile is within ~1.6% of the true value. Not safe for
// concurrent use: each worker keeps its own and they are merged.
type histogram struct {
	counts map[int]int64
	n      int64
}

const subBits = 6

func newHistogram() *histogram { return &histogram{counts: map[int]int64{}} }

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // shift that leaves subBits+1 significant bits
	return (e+1)<<subBits + int(v>>e)&(1<<subBits-1)
}

// lowerBound is the smallest value in bucket b.
func lowerBound(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	e := b>>subBits - 1
	return (1<<subBits | uint64(b&(1<<subBits-1))) << e
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o == nil {
		return
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.n += o.n
}

// quantile is the q-th quantile (0..1); zero when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h == nil || h.n == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.counts))
	for b := range h.counts {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	rank := int64(q*float64(h.n-1)) + 1
	var seen int64
	for _, b := range keys {
		seen += h.counts[b]
		if seen >= rank {
			return time.Duration(lowerBound(b))
		}
	}
	return time.Duration(lowerBound(keys[len(keys)-1]))
}
