//go:build linux

package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// The client: TLS 1.3, X25519 only, no session cache (every handshake is
// full). X25519 is pinned because Go's default first choice, the hybrid
// X25519MLKEM768, is not offered by the peers' OpenSSL 3.0 and would make
// Go servers alone do the post-quantum work. The certificate is not
// verified (the server's CertificateVerify signature still is) so the
// client spends less of the shared CPU.
func clientTLSConfig() *tls.Config {
	return &tls.Config{
		ServerName:         benchServerName,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
}

var tlsPayload = []byte("ping-0123456789\n")

// oneHandshake connects, handshakes, sends one short message and reads
// the echo, then closes.
func oneHandshake(addr string, cfg *tls.Config, buf []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return err
	}
	if _, err := c.Write(tlsPayload); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:len(tlsPayload)]); err != nil {
		return err
	}
	if !bytes.Equal(buf[:len(tlsPayload)], tlsPayload) {
		return errors.New("echo mismatch")
	}
	return c.Close()
}

// loadTLS runs o.workers closed-loop clients for d.
func loadTLS(_ backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
	cfg := clientTLSConfig()
	bufs := make([][]byte, o.workers)
	for i := range bufs {
		bufs[i] = make([]byte, 64)
	}
	return closedLoop(o.workers, d, m, "handshake", addr, func(w int) error { return oneHandshake(addr, cfg, bufs[w]) })
}

// openLoopTLS starts handshakes at a fixed rate for d, from a pool large
// enough not to throttle the schedule; a handshake's latency runs from its
// scheduled start, so a stalled target is charged for the queue it causes.
func openLoopTLS(addr string, rate float64, d time.Duration, o options) (sample, error) {
	cfg := clientTLSConfig()
	n := int(rate * d.Seconds())
	if n < 1 {
		return sample{}, errors.New("open loop: rate too low")
	}
	n = min(n, 1<<20)
	pool := 8 * o.workers
	bufs := make([][]byte, pool)
	for i := range bufs {
		bufs[i] = make([]byte, 64)
	}
	return openLoop(n, pool, rate, d, func(w int) error { return oneHandshake(addr, cfg, bufs[w]) }), nil
}
