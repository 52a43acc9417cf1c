//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// QUIC passthrough load (issue 6's closing note): each flow first sends a
// real client first flight (quic-go's Initials with SNI quicPassSNI, which
// the target's quic_route claims), then the udp-1200 echo load with every
// datagram shaped as a short-header packet (fixed bit set, an 8-byte
// connection ID). The backend is the UDP echo, so the
// figure compares with udp-1200: what passthrough costs over plain UDP
// forwarding once a flow is routed.

const quicPassSNI = "quic-pass.bench"

// quicPassHeader is the short header every measured datagram starts with.
var quicPassHeader = []byte{0x41, 0xb, 0xe, 0xc, 0xa, 0xf, 0xe, 0x0, 0x1}

var (
	flightOnce sync.Once
	flight     [][]byte
	flightErr  error
)

// quicPassFlight records, once, the first flight of a quic-go client with
// SNI quicPassSNI: the client dials a socket that never answers, and the
// datagrams that arrive before it goes quiet (its first retransmission
// comes after a PTO of about 300 ms) are the flight.
func quicPassFlight() ([][]byte, error) {
	flightOnce.Do(func() { flight, flightErr = recordFlight() })
	return flight, flightErr
}

func recordFlight() ([][]byte, error) {
	rec, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := quic.DialAddr(ctx, rec.LocalAddr().String(),
			&tls.Config{ServerName: quicPassSNI, NextProtos: []string{"h3"}}, &quic.Config{Versions: []quic.Version{quic.Version1}})
		if err == nil {
			conn.CloseWithError(0, "")
		}
	}()
	defer func() { cancel(); <-done }()
	var out [][]byte
	buf := make([]byte, 65535)
	wait := 5 * time.Second // for the first datagram
	for len(out) < 16 {
		_ = rec.SetReadDeadline(time.Now().Add(wait))
		n, err := rec.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && len(out) > 0 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recording a QUIC first flight: %w", err)
		}
		out = append(out, append([]byte(nil), buf[:n]...))
		wait = 100 * time.Millisecond
	}
	return out, nil
}

// openQUICPassFlow sends the first flight on c and reads back its echo,
// so the flow is routed before the window starts.
func openQUICPassFlow(c *net.UDPConn) error {
	fl, err := quicPassFlight()
	if err != nil {
		return err
	}
	for _, dg := range fl {
		if _, err := c.Write(dg); err != nil {
			return err
		}
	}
	buf := make([]byte, 65535)
	for range fl {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("the first flight did not come back (not routed to the echo backend?): %w", err)
		}
		if !quicLong(buf[:n]) {
			return fmt.Errorf("got a %d-byte datagram that is not the flight's echo", n)
		}
	}
	return nil
}

func quicLong(b []byte) bool { return len(b) > 0 && b[0]&0x80 != 0 }

// quicPassProbe is ready once a new flow's short-header datagram is echoed:
// the quic_route (not the local HTTP/3 server) took the flight.
func quicPassProbe(addr string) func() error {
	return func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		u := c.(*net.UDPConn)
		if err := openQUICPassFlow(u); err != nil {
			return err
		}
		msg := append(append([]byte(nil), quicPassHeader...), "probe"...)
		if _, err := u.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		_ = u.SetReadDeadline(time.Now().Add(time.Second))
		n, err := u.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != string(msg) {
			return errors.New("short-header probe not echoed")
		}
		return nil
	}
}

var quicPassScenario = &scenario{
	name: "quic-pass", title: "10. QUIC passthrough (quic_route), 1200 B short-header datagrams after a real Initial; compare udp-1200", kind: kindQUICPass,
	unit: "kpkt/s", scale: 1e3, cpuUnit: "CPU µs/pkt", cpuScale: 1e6, latency: true,
	newBackend: func() (backend, error) { return startUDPEcho(2) },
	load:       udpLoadWith(1200, quicPassHeader, openQUICPassFlow),
}
