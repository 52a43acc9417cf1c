package l7

import "testing"

// BenchmarkGrowStack is what growStack costs an HTTP/2 or HTTP/3 request:
// a new goroutine whose stack it grows to the proxy path's depth.
func BenchmarkGrowStack(b *testing.B) {
	b.ReportAllocs()
	done := make(chan struct{})
	for b.Loop() {
		go func() {
			growStack()
			done <- struct{}{}
		}()
		<-done
	}
}

// BenchmarkGoroutine is BenchmarkGrowStack without the growth: what the
// goroutine itself costs.
func BenchmarkGoroutine(b *testing.B) {
	b.ReportAllocs()
	done := make(chan struct{})
	for b.Loop() {
		go func() {
			done <- struct{}{}
		}()
		<-done
	}
}
