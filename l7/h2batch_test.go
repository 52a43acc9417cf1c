package l7

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestBatchConnOrder: small writes (copied, gathered) and large ones
// (written directly) reach the peer whole and in order, and Close writes
// what is still pending before closing.
func TestBatchConnOrder(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newBatchConn(a, 0)
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	for i := range 300 {
		n := 1 + i*7%100
		if i%50 == 0 {
			n = batchDirect + i
		}
		p := bytes.Repeat([]byte{byte(i)}, n)
		want.Write(p)
		if k, err := c.Write(p); err != nil || k != n {
			t.Fatalf("write %d: %d, %v", i, k, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if all := <-got; !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("peer read %d bytes, not the %d written in order", len(all), want.Len())
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestBatchConnBackPressure: with a peer that does not read, Writes are
// accepted up to batchLimit pending bytes, and then wait until it reads.
func TestBatchConnBackPressure(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newBatchConn(a, 0)
	defer c.Close()
	chunk := make([]byte, 1000)
	if _, err := c.Write(chunk); err != nil {
		t.Fatal(err)
	}
	// Once the drain goroutine holds that batch in the pipe's Write, what
	// follows stays pending.
	for deadline := time.Now().Add(time.Minute); batchOf(c).pendingLen() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the drain goroutine took nothing in a minute")
		}
		time.Sleep(time.Millisecond)
	}
	for batchOf(c).pendingLen() < batchLimit {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(chunk); wrote <- err }()
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) with %d bytes pending", err, batchLimit)
	case <-time.After(50 * time.Millisecond):
	}
	go io.Copy(io.Discard, b)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// batchOf is the batchConn newBatchConn returned.
func batchOf(c net.Conn) *batchConn {
	if tc, ok := c.(*batchTLSConn); ok {
		return tc.batchConn
	}
	return c.(*batchConn)
}

func (c *batchConn) pendingLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		return 0
	}
	return len(*c.pending)
}

// TestBatchConnWriteError: a write that fails closes the connection and is
// reported by the next Write.
func TestBatchConnWriteError(t *testing.T) {
	a, b := net.Pipe()
	c := newBatchConn(a, 0)
	b.Close()
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("first Write: %v (it only copies)", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Write([]byte("x"))
		if errors.Is(err, io.ErrClosedPipe) {
			break
		}
		if err != nil {
			t.Fatalf("Write: %v, want the drain's io.ErrClosedPipe", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no write error a minute after the peer closed")
		}
		time.Sleep(time.Millisecond) // the drain goroutine's failure; nothing to wait on
	}
	// failLocked closed the connection: its reader ends too.
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Read after a write error: %v, want io.ErrClosedPipe", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestBatchConnCloseStalledPeer: Close with bytes pending for a peer that
// does not read gives up after closeFlush, over TLS too (no close_notify
// alert waited on after the failed write).
func TestBatchConnCloseStalledPeer(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			a, b := net.Pipe()
			defer b.Close()
			var nc net.Conn = a
			if useTLS {
				cfg := &tls.Config{Certificates: []tls.Certificate{guardTestCert(t)}}
				srv, cli := tls.Server(a, cfg), tls.Client(b, &tls.Config{InsecureSkipVerify: true})
				errc := make(chan error, 1)
				go func() { errc <- cli.Handshake() }()
				if err := srv.Handshake(); err != nil {
					t.Fatal(err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				nc = srv
			}
			c := newBatchConn(nc, 0)
			batchOf(c).closeFlush = 20 * time.Millisecond
			if _, err := c.Write([]byte("never read")); err != nil {
				t.Fatal(err)
			}
			// tls.Conn's close_notify would have waited 5 s more.
			if d := closeTime(t, c); d > 4*time.Second {
				t.Errorf("Close took %v", d)
			}
			if _, err := b.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("peer Read after Close: %v, want EOF", err)
			}
		})
	}
}

// TestBatchConnCloseWithinStall: Close waits for a peer that does not read
// no longer than the stall timeout when that is shorter than closeFlush:
// its deadline used to replace the drain's, so a client that flooded
// PINGs without reading their ACKs held its connection 5s past
// timeouts.idle once x/net gave up on it (integration TestHostileH2Floods).
func TestBatchConnCloseWithinStall(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newBatchConn(a, 200*time.Millisecond)
	if _, err := c.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	// closeFlush is 5s; the stall timeout 200ms.
	if d := closeTime(t, c); d > 3*time.Second {
		t.Errorf("Close took %v with a 200ms stall timeout", d)
	}
}

// closeTime is how long c.Close takes; a minute fails the test.
func closeTime(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close still waiting for a stalled peer after a minute")
	}
	return time.Since(start)
}

// TestBatchConnTLSState: the wrapper of a *tls.Conn reports its state (so
// that HTTP/2 requests carry Request.TLS), a plaintext one has none.
func TestBatchConnTLSState(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := newBatchConn(a, 0).(interface{ ConnectionState() tls.ConnectionState }); ok {
		t.Error("plaintext batchConn has ConnectionState")
	}
	if _, ok := newBatchConn(tls.Server(b, &tls.Config{}), 0).(interface{ ConnectionState() tls.ConnectionState }); !ok {
		t.Error("TLS batchConn has no ConnectionState")
	}
}
