//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// udpLoad echoes size-byte datagrams over o.flows client sockets (each a
// flow in the proxy), each keeping at most o.window datagrams in flight.
// A flow that hears nothing for udpTimeout counts its window as lost and
// starts over; the final loss figure is sent minus answered after a drain.
func udpLoad(size int) func(backend, string, time.Duration, options, *meter) (sample, error) {
	return udpLoadWith(size, nil, nil)
}

// udpLoadWith is udpLoad with each datagram starting with hdr, and with
// open, when set, run on each flow's socket before the window starts.
func udpLoadWith(size int, hdr []byte, open func(*net.UDPConn) error) func(backend, string, time.Duration, options, *meter) (sample, error) {
	return func(_ backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return sample{}, err
		}
		conns := make([]*net.UDPConn, 0, o.flows)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range o.flows {
			c, err := net.DialUDP("udp", nil, raddr)
			if err != nil {
				return sample{}, err
			}
			_ = c.SetReadBuffer(1 << 20)
			conns = append(conns, c)
			if open != nil {
				if err := open(c); err != nil {
					return sample{}, err
				}
			}
		}
		results := make([]udpFlow, len(conns))
		var wg sync.WaitGroup
		m.begin()
		deadline := m.t0.Add(d)
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runUDPFlow(c, size, hdr, o.window, deadline)
			}()
		}
		wg.Wait()
		m.end()
		s := sample{hist: newHistogram()}
		for _, r := range results {
			s.Work += float64(r.inWindow)
			s.Sent += r.sent
			s.Lost += r.sent - r.received
			s.Errors += r.errors
			s.hist.merge(r.hist)
		}
		m.fill(&s)
		// The window ends at the deadline, not after the drain.
		s.Seconds = d.Seconds()
		s.finishLatency()
		if s.Work == 0 {
			return s, fmt.Errorf("no datagram came back through %s", addr)
		}
		return s, nil
	}
}

// udpLoader names the UDP load for the report. The loader and the echo
// backend are the same goroutines in the harness for every target, direct
// included: the "loader cores" column is their CPU, so that a target's
// share of the machine can be told from the harness's.
func udpLoader(o options) string {
	return fmt.Sprintf("the harness's Go loader, %d flows × %d datagrams in flight, echoed by the harness's Go backend (the same for every target)",
		o.flows, o.window)
}

const udpTimeout = 50 * time.Millisecond

type udpFlow struct {
	sent, received, inWindow, errors int64
	hist                             *histogram
}

// runUDPFlow keeps window datagrams of size bytes in flight on c until
// deadline. Each starts with hdr, then (if there is room) a sequence number
// and its send time for the latency histogram.
func runUDPFlow(c *net.UDPConn, size int, hdr []byte, window int, deadline time.Time) udpFlow {
	f := udpFlow{hist: newHistogram()}
	out := make([]byte, max(size, len(hdr)+16))[:size]
	off := copy(out, hdr)
	stamp := size >= off+16
	in := make([]byte, 65536)
	var seq uint64
	inflight := 0
	for i := 0; i < 1<<30; i++ {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		for inflight < window {
			seq++
			if stamp {
				binary.LittleEndian.PutUint64(out[off:], seq)
				binary.LittleEndian.PutUint64(out[off+8:], uint64(time.Now().UnixNano()))
			}
			if _, err := c.Write(out); err != nil {
				f.errors++ // e.g. ECONNREFUSED from an earlier ICMP
				break
			}
			f.sent++
			inflight++
		}
		_ = c.SetReadDeadline(now.Add(udpTimeout))
		n, err := c.Read(in)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				inflight = 0 // those are lost; late answers still count below
			} else {
				f.errors++
			}
			continue
		}
		f.received++
		f.inWindow++
		inflight = max(inflight-1, 0)
		if stamp && n >= off+16 {
			sent := int64(binary.LittleEndian.Uint64(in[off+8:]))
			f.hist.record(time.Duration(time.Now().UnixNano() - sent))
		}
	}
	// Drain what is still in flight, bounded by count and time. (Counting
	// up to sent-received while received grows drained only half of it,
	// and the rest showed as loss for every target alike.)
	for pending := f.sent - f.received; pending > 0; pending-- {
		_ = c.SetReadDeadline(time.Now().Add(2 * udpTimeout))
		if _, err := c.Read(in); err != nil {
			break
		}
		f.received++
	}
	return f
}
