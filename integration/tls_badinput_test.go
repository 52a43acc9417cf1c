//go:build linux

package integration

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// badTLSClient is one kind of misbehaving client: run connects, misbehaves and
// returns how long the proxy took to close the connection, or an error if
// it did not close it within the bound.
type badTLSClient struct {
	name string
	run  func(addr string, within time.Duration) (time.Duration, error)
}

// waitProxyClose reads from c until the proxy closes it or the deadline passes.
func waitProxyClose(c net.Conn, start time.Time, within time.Duration) (time.Duration, error) {
	_ = c.SetReadDeadline(start.Add(within))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return time.Since(start), fmt.Errorf("connection still open after %v", within)
			}
			return time.Since(start), nil
		}
	}
}

// sendThenWaitClose writes payload (ignoring write errors: the proxy may close
// first) and waits for the close.
func sendThenWaitClose(payload func() []byte) func(string, time.Duration) (time.Duration, error) {
	return func(addr string, within time.Duration) (time.Duration, error) {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		defer c.Close()
		if b := payload(); len(b) > 0 {
			_ = c.SetWriteDeadline(start.Add(within))
			_, _ = c.Write(b)
		}
		return waitProxyClose(c, start, within)
	}
}

// trickleHello writes hello one byte every 100ms until the proxy closes.
func trickleHello(hello []byte) func(string, time.Duration) (time.Duration, error) {
	return func(addr string, within time.Duration) (time.Duration, error) {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		defer c.Close()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tk := time.NewTicker(100 * time.Millisecond)
			defer tk.Stop()
			for _, b := range hello {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tk.C:
				}
			}
		})
		defer wg.Wait()
		defer close(stop)
		return waitProxyClose(c, start, within)
	}
}

// sslv2Hello is an SSLv2-format CLIENT-HELLO offering three SSLv3/TLS
// cipher specs.
func sslv2Hello() []byte {
	b := []byte{0x80, 0x25, 0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10,
		0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a}
	challenge := make([]byte, 16)
	for i := range challenge {
		challenge[i] = byte(i * 7)
	}
	b = append(b, challenge...)
	b[1] = byte(len(b) - 2)
	return b
}

// hugeHello is a handshake record stream announcing a 128 KiB ClientHello,
// sent as 16 KiB records, 80 KiB in all.
func hugeHello() []byte {
	var out []byte
	body := make([]byte, 0, 80<<10)
	body = append(body, 0x01, 0x02, 0x00, 0x00) // ClientHello, 128 KiB
	body = append(body, 0x03, 0x03)             // client_version
	for len(body) < cap(body) {
		body = append(body, 0x41)
	}
	for len(body) > 0 {
		n := min(len(body), 16<<10)
		hdr := []byte{0x16, 0x03, 0x01, 0, 0}
		binary.BigEndian.PutUint16(hdr[3:], uint16(n))
		out = append(out, hdr...)
		out = append(out, body[:n]...)
		body = body[n:]
	}
	return out
}

// TestTLSBadInput: each malformed or stalled opening is closed within the
// handshake timeout (500ms here), the process stays healthy and no file
// descriptor leaks.
func TestTLSBadInput(t *testing.T) {
	ca := newTestCA(t, "proxy")
	dir := t.TempDir()
	leaf := ca.issue(t, dir, "b", "b.test")
	be := startTCPBackend(t, echo)
	p := startProxy(t, hcl(`
tls {
  certificate "b" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "tls" {
  address = "127.0.0.1:0"
  timeouts {
    handshake = "500ms"
  }
}
tcp_route "b" {
  entrypoints = ["tls"]
  sni         = ["b.test"]
  tls         = "terminate"
  service     = "echo"
}
service "echo" {
  backend %q {}
}
`, leaf.certFile, leaf.keyFile, be.addr))
	addr := p.addr("tls")
	cfg := &tls.Config{ServerName: "b.test", RootCAs: ca.pool()}
	hello := captureClientHello(t, cfg)
	const within = 1500 * time.Millisecond

	cases := []badTLSClient{
		{"garbage", sendThenWaitClose(func() []byte { return []byte("\x00\x01\x02garbage that is not TLS at all\r\n\r\n") })},
		{"HTTP request", sendThenWaitClose(func() []byte { return []byte("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n") })},
		{"SSLv2 hello", sendThenWaitClose(sslv2Hello)},
		{"truncated ClientHello then silence", sendThenWaitClose(func() []byte { return hello[:len(hello)/2] })},
		{"record header only then silence", sendThenWaitClose(func() []byte { return hello[:5] })},
		{"oversized ClientHello", sendThenWaitClose(hugeHello)},
		{"nothing sent", sendThenWaitClose(func() []byte { return nil })},
		{"1 byte per 100ms trickleHello", trickleHello(hello)},
	}

	// Warm up with a good client so lazily created state (pools, buffers)
	// counts in the baseline.
	func() {
		c := dialTLSEcho(t, addr, cfg)
		c.Close()
	}()
	pid := p.cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	baseline := procFDCount(t, pid)

	for _, bc := range cases {
		t.Run(bc.name, func(t *testing.T) {
			el, err := bc.run(addr, within)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("closed after %v", el)
		})
	}

	t.Run("still healthy", func(t *testing.T) {
		if p.exited() {
			t.Fatal("proxynow exited")
		}
		c, err := tlsDial(addr, cfg)
		if err != nil {
			t.Fatalf("a good client after the bad ones: %v", err)
		}
		defer c.Close()
		if got, err := roundTrip(c, "healthy"); err != nil || got != "healthy" {
			t.Fatalf("echo: %q %v", got, err)
		}
	})

	t.Run("no fd leak after 50 bad connections", func(t *testing.T) {
		// 10 at a time; every kind of bad client in turn.
		sem := make(chan struct{}, 10)
		errs := make(chan error, 50)
		var wg sync.WaitGroup
		for i := range 50 {
			bc := cases[i%len(cases)]
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := bc.run(addr, within); err != nil {
					errs <- fmt.Errorf("%s: %w", bc.name, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		var n int
		for {
			n = procFDCount(t, pid)
			if n <= baseline+2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n > baseline+2 {
			t.Fatalf("proxynow has %d open fds after the bad connections, baseline %d", n, baseline)
		}
		t.Logf("fds: baseline %d, after %d", baseline, n)
	})

	if n := be.accepted.Load(); n != 2 {
		t.Errorf("backend accepted %d connections, want 2 (the good ones only)", n)
	}
}
