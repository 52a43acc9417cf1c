//go:build linux

package main

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"p50", 0.50, 5000 * time.Microsecond},
		{"p99", 0.99, 9900 * time.Microsecond},
		{"min", 0, time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.quantile(tc.q)
			if d := float64(got-tc.want) / float64(tc.want); d > 0.001 || d < -0.02 {
				t.Errorf("quantile(%v) = %v, want %v within 2%%", tc.q, got, tc.want)
			}
		})
	}
}

func TestBucketRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 123456789, 1 << 40} {
		b := bucketOf(v)
		lo := lowerBound(b)
		if lo > v || float64(v-lo) > float64(v)/64+1 {
			t.Errorf("v=%d: bucket %d lower bound %d", v, b, lo)
		}
		if b > 0 && lowerBound(b-1) >= lo {
			t.Errorf("v=%d: buckets not increasing at %d", v, b)
		}
	}
}
