//go:build linux

package main

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// loadTCPBulk pushes bytes through o.conns connections for d; the work is
// what the sink received inside the window, so kernel buffers filled
// before it or drained after it do not count.
func loadTCPBulk(b backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
	sink := b.(*tcpBackend)
	conns := make([]net.Conn, 0, o.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		sink.waitIdle(5 * time.Second)
	}()
	for range o.conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return sample{}, fmt.Errorf("dial %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	// Let the pipes fill before the window opens.
	stop := time.Now().Add(d + 200*time.Millisecond)
	var wg sync.WaitGroup
	buf := make([]byte, 64<<10)
	for _, c := range conns {
		_ = c.SetWriteDeadline(stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1<<30; i++ { // bounded by the write deadline
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	m.begin()
	b0 := sink.bytes.Load()
	time.Sleep(d)
	b1 := sink.bytes.Load()
	m.end()
	wg.Wait()
	s := sample{Work: float64(b1 - b0)}
	m.fill(&s)
	if s.Work == 0 {
		return s, fmt.Errorf("no bytes reached the sink through %s", addr)
	}
	return s, nil
}
