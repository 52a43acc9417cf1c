//go:build linux

package integration

// WebSocket through proxynow with a real WebSocket library
// (github.com/coder/websocket) on both ends: the Upgrade is tunnelled,
// messages of both types and of 1 MiB round-trip intact, and the close
// handshake crosses the proxy in both directions.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	wsSubprotocol = "echo.proxynow.test"
	wsReadLimit   = 4 << 20
	wsCloseMe     = "please close"
)

// wsEchoBackend accepts WebSocket connections and echoes every message with
// its type. On the text message wsCloseMe it starts the close handshake
// itself with status 4000. What ended each connection is reported on ends.
type wsEchoBackend struct {
	addr string
	ends chan wsEnd
	wg   sync.WaitGroup
}

// wsEnd is how one backend connection ended: the close frame the client sent
// (peerClose), or the result of the backend's own Close (selfClose).
type wsEnd struct {
	path      string
	peerClose *websocket.CloseError
	readErr   error
	selfClose bool
	closeErr  error
}

func startWSEchoBackend(t *testing.T) *wsEchoBackend {
	t.Helper()
	b := &wsEchoBackend{ends: make(chan wsEnd, 64)}
	b.addr = startProtoHTTPBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.wg.Add(1)
		defer b.wg.Done()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsSubprotocol}})
		if err != nil {
			t.Errorf("backend: accept: %v", err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(wsReadLimit)
		ctx, cancel := context.WithTimeout(context.Background(), 2*ioTimeout)
		defer cancel()
		end := wsEnd{path: r.URL.Path}
		defer func() { b.ends <- end }()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					end.peerClose = &ce
				} else {
					end.readErr = err
				}
				return
			}
			if typ == websocket.MessageText && string(data) == wsCloseMe {
				end.selfClose = true
				end.closeErr = c.Close(4000, "backend says bye")
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				end.readErr = fmt.Errorf("write: %w", err)
				return
			}
		}
	}))
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("backend WebSocket handlers still running 10s after the test")
		}
	})
	return b
}

// nextEnd waits for the next finished backend connection.
func (b *wsEchoBackend) nextEnd(t *testing.T) wsEnd {
	t.Helper()
	select {
	case e := <-b.ends:
		return e
	case <-time.After(ioTimeout):
		t.Fatal("backend connection did not end")
		return wsEnd{}
	}
}

func TestProtoWebSocketEcho(t *testing.T) {
	be := startWSEchoBackend(t)
	pp := startProtoProxy(t, true, fmt.Sprintf(`backend "http://%s" {}`, be.addr))

	for _, mode := range []string{"ws", "wss"} {
		t.Run(mode, func(t *testing.T) {
			tr := &http.Transport{}
			if mode == "wss" {
				// HTTP/1.1 by ALPN: the Upgrade handshake is HTTP/1.1 only.
				tr.TLSClientConfig = pp.tlsConfig("http/1.1")
			}
			t.Cleanup(tr.CloseIdleConnections)
			dial := func(t *testing.T, path string) *websocket.Conn {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				defer cancel()
				c, resp, err := websocket.Dial(ctx, mode+"://"+pp.addr+path, &websocket.DialOptions{
					HTTPClient:   &http.Client{Transport: tr},
					Subprotocols: []string{wsSubprotocol},
				})
				if err != nil {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					t.Fatalf("dial %s through proxynow: %v (HTTP status %d)", path, err, status)
				}
				t.Cleanup(func() { c.CloseNow() })
				if resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("handshake status %d, want 101", resp.StatusCode)
				}
				if got := c.Subprotocol(); got != wsSubprotocol {
					t.Fatalf("negotiated subprotocol %q, want %q (Sec-WebSocket-Protocol lost by the proxy?)", got, wsSubprotocol)
				}
				c.SetReadLimit(wsReadLimit)
				return c
			}

			t.Run("messages", func(t *testing.T) {
				c := dial(t, "/messages")
				ctx := protoCtx(t)
				msg := func(i int) (websocket.MessageType, []byte) {
					if i%2 == 0 {
						return websocket.MessageText, fmt.Appendf(nil, "text message %d: héllo ✓", i)
					}
					b := make([]byte, 1+i*37)
					for j := range b {
						b[j] = byte(i + j)
					}
					return websocket.MessageBinary, b
				}
				check := func(i int, typ websocket.MessageType, got []byte) {
					t.Helper()
					wt, want := msg(i)
					if typ != wt || !bytes.Equal(got, want) {
						t.Fatalf("message %d: got %v %d bytes %q, want %v %d bytes", i, typ, len(got), trunc(got), wt, len(want))
					}
				}
				// Lockstep: each message comes back before the next is sent.
				for i := range 100 {
					typ, data := msg(i)
					if err := c.Write(ctx, typ, data); err != nil {
						t.Fatalf("write %d: %v", i, err)
					}
					rt, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("read %d: %v", i, err)
					}
					check(i, rt, got)
				}
				// Pipelined: 100 more written while the replies are read.
				werr := make(chan error, 1)
				go func() {
					for i := 100; i < 200; i++ {
						typ, data := msg(i)
						if err := c.Write(ctx, typ, data); err != nil {
							werr <- fmt.Errorf("write %d: %w", i, err)
							return
						}
					}
					werr <- nil
				}()
				for i := 100; i < 200; i++ {
					rt, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("read %d: %v", i, err)
					}
					check(i, rt, got)
				}
				if err := <-werr; err != nil {
					t.Fatal(err)
				}
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Fatalf("close: %v", err)
				}
				if e := be.nextEnd(t); e.peerClose == nil || e.peerClose.Code != websocket.StatusNormalClosure {
					t.Fatalf("backend end %+v, want a normal close from the client", e)
				}
			})

			t.Run("large", func(t *testing.T) {
				c := dial(t, "/large")
				ctx := protoCtx(t)
				big := make([]byte, 1<<20)
				_, _ = rand.Read(big)
				// One frame of 1 MiB.
				if err := c.Write(ctx, websocket.MessageBinary, big); err != nil {
					t.Fatalf("write 1 MiB: %v", err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("read 1 MiB: %v", err)
				}
				if typ != websocket.MessageBinary || !bytes.Equal(got, big) {
					t.Fatalf("1 MiB binary message came back as %v, %d bytes, equal=%v", typ, len(got), bytes.Equal(got, big))
				}
				// The same size as a text message in 16 KiB fragments.
				text := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
				w, err := c.Writer(ctx, websocket.MessageText)
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(text); off += 16 << 10 {
					if _, err := w.Write(text[off : off+16<<10]); err != nil {
						t.Fatalf("write fragment at %d: %v", off, err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				typ, got, err = c.Read(ctx)
				if err != nil {
					t.Fatalf("read fragmented 1 MiB: %v", err)
				}
				if typ != websocket.MessageText || !bytes.Equal(got, text) {
					t.Fatalf("fragmented 1 MiB text came back as %v, %d bytes", typ, len(got))
				}
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Fatalf("close: %v", err)
				}
				be.nextEnd(t)
			})

			t.Run("client-close", func(t *testing.T) {
				c := dial(t, "/client-close")
				ctx := protoCtx(t)
				if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.Read(ctx); err != nil || string(got) != "ping" {
					t.Fatalf("echo: %q, %v", got, err)
				}
				// Close returns nil only once the backend's close frame came
				// back through the proxy.
				if err := c.Close(websocket.StatusGoingAway, "client says bye"); err != nil {
					t.Fatalf("client close handshake: %v", err)
				}
				e := be.nextEnd(t)
				if e.path != "/client-close" || e.peerClose == nil {
					t.Fatalf("backend end %+v, want the client's close frame", e)
				}
				if e.peerClose.Code != websocket.StatusGoingAway || e.peerClose.Reason != "client says bye" {
					t.Fatalf("backend saw close %d %q, want %d %q", e.peerClose.Code, e.peerClose.Reason, websocket.StatusGoingAway, "client says bye")
				}
			})

			t.Run("backend-close", func(t *testing.T) {
				c := dial(t, "/backend-close")
				ctx := protoCtx(t)
				if err := c.Write(ctx, websocket.MessageText, []byte(wsCloseMe)); err != nil {
					t.Fatal(err)
				}
				_, data, err := c.Read(ctx)
				if err == nil {
					t.Fatalf("read %q, want the backend's close", data)
				}
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("read error %v, want a close frame", err)
				}
				if ce.Code != 4000 || ce.Reason != "backend says bye" {
					t.Fatalf("client saw close %d %q, want 4000 %q", ce.Code, ce.Reason, "backend says bye")
				}
				e := be.nextEnd(t)
				if e.path != "/backend-close" || !e.selfClose {
					t.Fatalf("backend end %+v, want its own close", e)
				}
				// The backend's Close returns nil only once the client's
				// reply close frame came back through the proxy.
				if e.closeErr != nil {
					t.Fatalf("backend close handshake: %v", e.closeErr)
				}
			})
		})
	}
}
