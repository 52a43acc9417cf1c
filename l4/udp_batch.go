package l4

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// forwardBatch relays the datagrams of b, read from the listening socket,
// each on its client's flow: one write per flow for all of that flow's
// datagrams in the batch, in the order they came. The flow table is
// looked up under one read lock for the batch.
func (s *UDPServer) forwardBatch(b *dgramBatch) {
	k := b.n
	s.metrics().receivedN(k)
	s.mu.RLock()
	for i := range k {
		b.flows[i] = s.flows[b.from[i]]
	}
	s.mu.RUnlock()
	var idx [batchSize]int
	var done [batchSize]bool // dropped: no flow could be opened
	for i := range k {
		if b.flows[i] != nil || done[i] {
			continue
		}
		n := 0
		for j := i; j < k; j++ {
			if b.flows[j] == nil && b.from[j] == b.from[i] {
				idx[n] = j
				n++
			}
		}
		f := s.open(b.from[i], n)
		for _, j := range idx[:n] {
			b.flows[j], done[j] = f, f == nil
		}
		if f == nil {
			s.dropped.Add(uint64(n))
		}
	}
	// Idle accounting needs no finer clock than one reading per batch.
	now := time.Now().UnixNano()
	for i := range k {
		f := b.flows[i]
		if f == nil {
			continue // dropped, or sent with an earlier datagram of f
		}
		n := 0
		for j := i; j < k; j++ {
			if b.flows[j] == f {
				b.flows[j] = nil
				idx[n] = j
				n++
			}
		}
		s.sendFlow(b, f, idx[:n], now)
	}
}

// sendFlow writes datagrams idx of b to f's backend, each behind f's PROXY
// header if it has one. A write that finds the flow closed (it expired
// between the lookup and the write) opens a new flow for the rest.
func (s *UDPServer) sendFlow(b *dgramBatch, f *flow, idx []int, now int64) {
	for retried := false; ; retried = true {
		in := 0
		for m, j := range idx {
			start := headRoom - len(f.head)
			copy(b.bufs[j][start:], f.head)
			b.vec[m] = b.bufs[j][start : headRoom+b.size[j]]
			in += b.size[j]
		}
		f.stats.in.Add(int64(in))
		f.last.Store(now)
		var ferr error
		ms, segs := f.out.pack(b, len(idx), nil)
		sent, _ := f.out.write(ms, segs, sendDontWait, func(err error) bool {
			ferr = err
			return false
		})
		if ferr == nil {
			return
		}
		dropped := len(idx) - sent
		if errors.Is(ferr, net.ErrClosed) && !retried {
			if f = s.open(f.client, dropped); f == nil {
				s.dropped.Add(uint64(dropped))
				return
			}
			idx = idx[sent:]
			continue
		}
		// The rest of f's datagrams in this batch are dropped: a full
		// send buffer (EAGAIN) would refuse them too, and any other error
		// ends the flow.
		s.dropped.Add(uint64(dropped))
		f.metrics.dropN(dropWrite, dropped)
		if !errors.Is(ferr, syscall.EAGAIN) && !errors.Is(ferr, syscall.ENOBUFS) {
			s.failed(f, ferr)
		}
		return
	}
}

// replyBatch sends the datagrams of b, read from f's backend, to f's
// client. A datagram the listening socket refuses is dropped, and the rest
// go on.
func (s *UDPServer) replyBatch(f *flow, b *dgramBatch) {
	f.last.Store(time.Now().UnixNano())
	for i := range b.n {
		b.vec[i] = b.payload(i)
	}
	ms, segs := s.out.pack(b, b.n, f.addr)
	sent, bytes := s.out.write(ms, segs, 0, func(error) bool {
		s.dropped.Add(1)
		f.metrics.drop(dropWrite)
		return true
	})
	f.metrics.sentN(sent)
	f.stats.out.Add(int64(bytes))
}
