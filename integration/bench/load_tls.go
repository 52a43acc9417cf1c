package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
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
	due := make(chan time.Time, n)
	pool := 8 * o.workers
	hists := make([]*histogram, pool)
	var ok, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	hardStop := start.Add(d + 10*time.Second)
	for i := range pool {
		hists[i] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for at := range due {
				if time.Now().After(hardStop) {
					errs.Add(1)
					continue
				}
				if err := oneHandshake(addr, cfg, buf); err != nil {
					errs.Add(1)
					continue
				}
				ok.Add(1)
				hists[i].record(time.Since(at))
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	s := sample{hist: newHistogram(), Rate: rate, Work: float64(ok.Load()), Errors: errs.Load(), Seconds: time.Since(start).Seconds()}
	for _, h := range hists {
		s.hist.merge(h)
	}
	s.finishLatency()
	return s, nil
}
