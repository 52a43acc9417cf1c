//go:build linux

package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Backends run inside the harness: the same backend serves every target of
// a scenario, one target at a time.

// tcpBackend is a TCP sink (counts and discards) or echo server.
type tcpBackend struct {
	ln     net.Listener
	echo   bool
	bytes  atomic.Int64 // received
	active atomic.Int64 // open connections
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startTCPBackend(echo bool) (*tcpBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &tcpBackend{ln: ln, echo: echo, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

func (b *tcpBackend) addr() string { return b.ln.Addr().String() }

func (b *tcpBackend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.active.Add(1)
		b.wg.Add(1)
		go b.handle(c)
	}
}

func (b *tcpBackend) handle(c net.Conn) {
	defer b.wg.Done()
	defer b.active.Add(-1)
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b.bytes.Add(int64(n))
		if n > 0 && b.echo {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitIdle waits, up to timeout, until every connection has closed, so one
// target's tail does not count toward the next.
func (b *tcpBackend) waitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for b.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *tcpBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// udpEcho answers every datagram with itself from a few goroutines sharing
// one socket, so the backend is not the bottleneck of the direct run.
type udpEcho struct {
	pc *net.UDPConn
	wg sync.WaitGroup
}

func startUDPEcho(workers int) (*udpEcho, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = pc.SetReadBuffer(4 << 20)
	_ = pc.SetWriteBuffer(4 << 20)
	e := &udpEcho{pc: pc}
	for range workers {
		e.wg.Add(1)
		go e.serve()
	}
	return e, nil
}

func (e *udpEcho) addr() string { return e.pc.LocalAddr().String() }

func (e *udpEcho) serve() {
	defer e.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := e.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = e.pc.WriteToUDPAddrPort(buf[:n], from)
	}
}

func (e *udpEcho) close() {
	e.pc.Close()
	e.wg.Wait()
}
