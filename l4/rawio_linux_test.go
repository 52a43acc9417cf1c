package l4

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawPair is a loopback TCP connection: a RawIO on one end, the plain
// other end.
func rawPair(t *testing.T) (*RawIO, *net.TCPConn, *net.TCPConn) {
	t.Helper()
	c, peer := tcpPair(t)
	r := NewRawIO(c)
	if r == nil {
		t.Fatal("NewRawIO: nil for a TCP socket")
	}
	return r, c, peer
}

// Bytes both ways, a write far larger than the socket buffers against a
// slow reader (the poller's waits for room), then io.EOF.
func TestRawIOReadWrite(t *testing.T) {
	r, _, peer := rawPair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			time.Sleep(time.Microsecond)
			n, err := peer.Read(buf)
			b.Write(buf[:n])
			if err != nil || b.Len() == len(big) {
				got <- b.Bytes()
				return
			}
		}
	}()
	if n, err := r.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer read %d bytes, not the %d written", len(b), len(big))
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read = %d, %v", n, err)
	}
	peer.Write([]byte("hello"))
	peer.CloseWrite()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want io.EOF", n, err)
	}
}

// Deadlines, a closed connection and a reset read as a net.TCPConn's.
func TestRawIOErrors(t *testing.T) {
	r, c, peer := rawPair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := r.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past its deadline: %v; want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read past its deadline: %#v; want a read OpError", err)
	}
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	// The peer reads nothing: the buffers fill, then the deadline. What
	// was written is counted.
	n, err := r.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
		t.Fatalf("Write past its deadline = %d, %v; want a timeout", n, err)
	}
	c.SetWriteDeadline(time.Time{})

	peer.SetLinger(0)
	peer.Close() // RST
	time.Sleep(50 * time.Millisecond)
	for {
		_, err = r.Read(make([]byte, 1<<20))
		if err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read after a reset: %v; want ECONNRESET in a read OpError", err)
	}
	c.Close()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v; want net.ErrClosed", err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v; want net.ErrClosed", err)
	}
}

// Reads and writes from several goroutines at once (run under -race).
func TestRawIOConcurrent(t *testing.T) {
	r, _, peer := rawPair(t)
	const n, size = 4, 1 << 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Write(make([]byte, size)); err != nil {
				t.Error(err)
			}
		}()
	}
	go io.Copy(peer, peer) // echo
	var total int
	var mu sync.Mutex
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8192)
			for {
				r.rc.Control(func(uintptr) {}) // touch the descriptor too
				k, err := r.Read(buf)
				mu.Lock()
				total += k
				done := total >= n*size
				mu.Unlock()
				if done {
					peer.CloseWrite() // the other readers get io.EOF
				}
				if err != nil || done {
					return
				}
			}
		}()
	}
	wg.Wait()
	if total != n*size {
		t.Fatalf("echoed %d bytes, want %d", total, n*size)
	}
}

func TestRawIONoAllocs(t *testing.T) {
	r, _, peer := rawPair(t)
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := r.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
		peer.Write(buf)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	})
	// The peer's side is a plain net.TCPConn (no allocations either).
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", allocs)
	}
}
