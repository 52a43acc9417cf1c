package l7

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// An HTTP/2 client that opens all its flow-control windows, asks for a
// large response and then stops reading the socket must not hold the
// connection and the handler for ever: the batched writer's write that
// makes no progress for timeouts.idle fails and ends the connection.
func TestH2ServerStalledReaderTimesOut(t *testing.T) {
	h, wrote := floodHandler(64<<10, 4096) // at most 256 MiB
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	c := h2RawGet(t, f.plain, 4096, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	defer c.Close()
	// The client never reads.
	awaitWriteFailure(t, wrote, "the client stopped reading")
}

// h2RawGet opens a prior-knowledge HTTP/2 connection to addr with the
// given read buffer (0: the default) and settings, opens the connection's
// window fully when the settings open the streams' windows, and sends
// GET / on stream 1.
func h2RawGet(t *testing.T, addr string, rcvbuf int, settings ...http2.Setting) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if rcvbuf > 0 {
		c.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, nil)
	fr.WriteSettings(settings...)
	if len(settings) > 0 {
		fr.WriteWindowUpdate(0, 1<<31-1-65535)
	}
	var hb []byte
	enc := hpack.NewEncoder(&byteSink{&hb})
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	return c
}

type byteSink struct{ b *[]byte }

func (s *byteSink) Write(p []byte) (int, error) { *s.b = append(*s.b, p...); return len(p), nil }

// A client that reads the socket but never gives the stream flow-control
// credit (no WINDOW_UPDATE past the initial 64 KiB): the stream is reset
// after timeouts.idle, and the handler's write fails.
func TestH2ServerStalledWindowTimesOut(t *testing.T) {
	h, wrote := floodHandler(16<<10, 1024) // 16 MiB
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	c := h2RawGet(t, f.plain, 0)
	defer c.Close()
	go io.Copy(io.Discard, c) // reads every byte, never credits the stream
	awaitWriteFailure(t, wrote, "the window ran out")
}

// Only a write that waits counts: a stream that pauses between writes for
// longer than timeouts.idle (an event stream) and one read slowly but
// steadily both complete.
func TestH2ServerPausedStreamKept(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first\n"))
		w.(http.Flusher).Flush()
		time.Sleep(3 * idle)
		w.Write([]byte("second\n"))
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: idle})
	tr := h2Client(false)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(f.url(false, "/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "first\nsecond\n" {
		t.Fatalf("paused stream: %q, %v", b, err)
	}
}

// A handler that streams small writes, each flushed (the proxy's flushEach
// for event streams, gRPC), blocks in Flush, not in Write, once the
// client stops crediting the stream: that Flush must fail after
// timeouts.idle too, and report its error (http.ResponseController's
// Flush must see the writer's FlushError).
func TestH2ServerStalledFlushTimesOut(t *testing.T) {
	flushed := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		chunk := make([]byte, 1024)
		for i := 0; i < 16<<10; i++ { // 16 MiB at most
			if _, err := w.Write(chunk); err != nil {
				flushed <- nil // the write, not the flush, saw it
				return
			}
			if err := rc.Flush(); err != nil {
				flushed <- err
				return
			}
		}
		flushed <- nil
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	c := h2RawGet(t, f.plain, 0)
	defer c.Close()
	go io.Copy(io.Discard, c) // reads every byte, never credits the stream
	select {
	case err := <-flushed:
		if err == nil {
			t.Fatal("no Flush reported the stalled stream's end")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's Flush still blocked 20 s after the window ran out (idle timeout 300 ms)")
	}
}

// A client that reads slowly but steadily (credit every 50 ms, far within
// timeouts.idle) keeps its stream even when one handler Write takes
// longer than timeouts.idle in all: only a wait without progress counts,
// as with nginx's send_timeout.
func TestH2ServerSlowSteadyReaderKept(t *testing.T) {
	const size = 256 << 10
	wrote := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, size)) // one Write, as a handler with the whole body does
		wrote <- err
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 500 * time.Millisecond})
	c := h2RawGet(t, f.plain, 0)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	fr := http2.NewFramer(c, c)
	got, owed := 0, 0
	for done := false; !done; {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		switch fm := fm.(type) {
		case *http2.DataFrame:
			got += len(fm.Data())
			owed += len(fm.Data())
			done = fm.StreamEnded()
			if owed >= 4096 && !done { // 4 KiB per 50 ms: about 80 KB/s
				time.Sleep(50 * time.Millisecond)
				fr.WriteWindowUpdate(1, uint32(owed))
				fr.WriteWindowUpdate(0, uint32(owed))
				owed = 0
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset (%v) after %d of %d bytes read steadily", fm.ErrCode, got, size)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY after %d bytes", got)
		}
	}
	if err := <-wrote; err != nil || got != size {
		t.Fatalf("read %d of %d bytes; handler: %v", got, size, err)
	}
}

// A handler that returns with the end of its body still buffered leaves
// x/net to flush it: a client that gives that stream no credit must not
// hold it (and the goroutine serving it) past timeouts.idle either.
func TestH2ServerStalledFinalFlushEnds(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 65535)) // the stream's window
		w.Write(make([]byte, 2000))  // a tail that stays in x/net's buffer
	})
	f := startH2Front(t, h, ServerOptions{IdleTimeout: 300 * time.Millisecond})
	c := h2RawGet(t, f.plain, 0)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fr := http2.NewFramer(c, c)
	got := 0
	for {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream neither ended nor reset after %d bytes: %v", got, err)
		}
		switch fm := fm.(type) {
		case *http2.DataFrame:
			got += len(fm.Data())
			if fm.StreamEnded() {
				t.Fatalf("stream ended after %d bytes without credit for them", got)
			}
		case *http2.RSTStreamFrame:
			return
		case *http2.GoAwayFrame:
			return
		case *http2.PingFrame:
			if !fm.IsAck() {
				fr.WritePing(true, fm.Data)
			}
		}
	}
}
