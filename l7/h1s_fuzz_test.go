package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// FuzzH1Server feeds arbitrary bytes to the HTTP/1 server as Serve runs it
// (listener, guard, accept loop) and half-closes: the server must
// not crash, must answer and close within h1sFuzzTimeout (a hung connection
// is a finding), what it sends must be HTTP/1 responses, and once the
// connection is closed no goroutine of it may remain.
//
//	go test -run '^$' -fuzz FuzzH1Server -fuzztime 90s ./l7/
func FuzzH1Server(f *testing.F) {
	for _, c := range diffCases() {
		f.Add([]byte(c.raw()))
	}
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Add([]byte(rget("/x", "Upgrade: websocket", "Connection: Upgrade") + "raw bytes after"))
	f.Add([]byte(rget("/hijack") + rget("/cl")))

	rec := &diffRecorder{discard: true}
	srv := NewServer(ServerOptions{Handler: rec.handler()})
	// A Unix socket, not loopback TCP: thousands of exchanges a second
	// would leave tens of thousands of sockets in TIME_WAIT and use up the
	// loopback ports (dialling then stalls for a minute). The server and
	// the guard see a stream connection with half-close and deadlines all
	// the same.
	ln, err := net.Listen("unix", filepath.Join(f.TempDir(), "h1s.sock"))
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	f.Cleanup(func() {
		srv.Close()
		<-served
	})
	addr := ln.Addr().String()
	// A first exchange, so that the server's own goroutines (net/http's
	// HTTP/2 server, started by Serve) run before any input's count.
	if _, err := fuzzExchange(addr, []byte(rget("/cl"))); err != nil {
		f.Fatal(err)
	}
	if err := awaitQuiet(srv, -1); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		// What runs now (the server, the fuzzing machinery) is the
		// baseline: every goroutine the input starts must end.
		base := runtime.NumGoroutine()
		out, err := fuzzExchange(addr, in)
		if err != nil {
			t.Fatalf("input %q: %v (got %q)", in, err, trim(out))
		}
		if bytes.HasPrefix(in, []byte("PRI * HTTP/2.0\r\n")) {
			// The server hands this connection to HTTP/2 (h2c with prior
			// knowledge): its answer is frames.
		} else if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.")) {
			t.Fatalf("input %q: the answer is not an HTTP/1 response: %q", in, trim(out))
		} else if err := checkResponses(out); err != nil {
			t.Fatalf("input %q: %v in %q", in, err, trim(out))
		}
		if err := awaitQuiet(srv, base); err != nil {
			t.Fatalf("input %q: %v", in, err)
		}
	})
}

// h1sFuzzTimeout bounds one input's exchange, and then the wait for its
// goroutines to end: far beyond anything the server needs with the input
// complete, and short enough that both fit in the 10 s after which the
// fuzzing coordinator declares a worker hung (and reports no detail).
const h1sFuzzTimeout = 4 * time.Second

// fuzzExchange writes in, half-closes, and reads until the server closes.
func fuzzExchange(addr string, in []byte) ([]byte, error) {
	c, err := net.Dial("unix", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(h1sFuzzTimeout))
	werr := make(chan error, 1)
	go func() {
		// Writing may block while the server answers: read meanwhile.
		_, err := c.Write(in)
		c.(*net.UnixConn).CloseWrite()
		werr <- err
	}()
	out, rerr := io.ReadAll(c)
	<-werr // a write error (the server closed first) is an answer too
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		return out, errors.New("the server neither answered nor closed in time")
	}
	return out, nil
}

// checkResponses parses out as a sequence of responses; a HEAD response
// cannot be told from the bytes, so a response that claims a body
// longer than what follows is accepted when it ends the stream.
func checkResponses(out []byte) error {
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
		if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return nil
		}
	}
}

// awaitQuiet waits until the server tracks no connection and the goroutine
// count is back to base (the connection's goroutine and any watcher
// ended); base -1 waits for the connections only.
func awaitQuiet(srv *Server, base int) error {
	deadline := time.Now().Add(h1sFuzzTimeout)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		srv.h1.mu.Lock()
		n := len(srv.h1.conns)
		srv.h1.mu.Unlock()
		g := runtime.NumGoroutine()
		if n == 0 && (base < 0 || g <= base) {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d connections, %d goroutines (> %d) after the close:\n%s", n, g, base, buf)
		}
		time.Sleep(wait)
	}
}

func trim(b []byte) []byte {
	if len(b) > 2048 {
		return b[:2048]
	}
	return b
}
