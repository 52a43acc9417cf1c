package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// A client that sends a request and then stops reading must not hold the
// connection (and the handler, and a backend connection behind it) for
// ever: a response write that makes no progress for timeouts.idle ends
// the connection, as nginx's send_timeout does. Plaintext and TLS.
func TestH1ServerStalledReaderTimesOut(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "plaintext"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			h, wrote := floodHandler(64<<10, 4096) // at most 256 MiB
			dial := startH1ServerOn(t, useTLS, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
			c := dial()
			if tc, ok := underlyingTCP(c); ok {
				tc.SetReadBuffer(4096)
			}
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			// The client never reads.
			awaitWriteFailure(t, wrote, "the client stopped reading")
		})
	}
}

func underlyingTCP(c net.Conn) (*net.TCPConn, bool) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

// The stall timeout counts time without progress, not the response's
// length: a client that reads slowly but steadily gets the whole response,
// and a handler that writes after a pause longer than the timeout (an
// event stream) is not cut either.
func TestH1ServerSlowReaderAndPausedWriterKept(t *testing.T) {
	const idle = 300 * time.Millisecond
	const size = 2 << 20
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pause" {
			w.Write([]byte("first\n"))
			w.(http.Flusher).Flush()
			time.Sleep(3 * idle)
			w.Write([]byte("second\n"))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	dial := startSmallSendBuf(t, h, idle)

	c := dial()
	if tc, ok := underlyingTCP(c); ok {
		tc.SetReadBuffer(16 << 10)
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 2 MiB at ~64 KiB per 100 ms (well under the timeout between reads)
	// takes longer than the timeout many times over.
	readSlowly(t, resp.Body, size, idle/3)

	c = dial()
	c.Write([]byte("GET /pause HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "first\nsecond\n" {
		t.Fatalf("paused writer: %q, %v", b, err)
	}
}

type smallSendBufListener struct{ net.Listener }

func (l smallSendBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// floodHandler writes n chunks of size bytes and sends the first write
// error (nil: all written) on the channel.
func floodHandler(size, n int) (http.Handler, <-chan error) {
	wrote := make(chan error, 1)
	chunk := make([]byte, size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		for i := 0; i < n && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		wrote <- err
	}), wrote
}

// awaitWriteFailure fails the test unless floodHandler's writes failed
// within 20 s (the tests' stall timeout is 300 ms).
func awaitWriteFailure(t *testing.T, wrote <-chan error, why string) {
	t.Helper()
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatalf("the handler wrote everything after %s", why)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the handler's write still blocked 20 s after %s (idle timeout 300 ms)", why)
	}
}

// As TestH1ServerSlowReaderAndPausedWriterKept's slow reader, with the
// whole response in one handler Write (a buffered or cached body): the
// stall timeout still counts time without progress, not that Write's.
func TestH1ServerSlowReaderOneBigWriteKept(t *testing.T) {
	const idle = 300 * time.Millisecond
	const size = 2 << 20
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(make([]byte, size))
	})
	c := startSmallSendBuf(t, h, idle)()
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	readSlowly(t, resp.Body, size, idle/3)
}

// readSlowly reads body in 64 KiB pieces, pausing between them, and fails
// the test unless it is size bytes long.
func readSlowly(t *testing.T, body io.Reader, size int, pause time.Duration) {
	t.Helper()
	start := time.Now()
	buf := make([]byte, 64<<10)
	var got int
	for {
		time.Sleep(pause)
		n, err := io.ReadFull(body, buf)
		got += n
		if err != nil {
			if got != size {
				t.Fatalf("slow reader got %d of %d bytes in %v: %v", got, size, time.Since(start), err)
			}
			return
		}
	}
}

// startSmallSendBuf serves h with the given idle timeout on connections
// whose send buffer is fixed small, and returns a dial function. The
// kernel reports a full send buffer writable again once half of it
// drained; an autotuned one (megabytes) would hold a write longer than
// these tests' timeout while the client reads steadily. With
// timeouts.idle at minutes, that is the client's pace at which a response
// is given up.
func startSmallSendBuf(t *testing.T, h http.Handler, idle time.Duration) (dial func() net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerOptions{Handler: h, IdleTimeout: idle})
	done := make(chan struct{})
	go func() { srv.Serve(smallSendBufListener{ln}); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}
