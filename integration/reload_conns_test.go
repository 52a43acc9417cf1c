//go:build linux

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// reloadConnsConfig: a WebSocket route, a TCP route with a long transfer
// on it, and routes that the reloads change (version) or remove (withOld).
func reloadConnsConfig(ws, echo string, version int, withOld bool) string {
	old := ""
	if withOld {
		old = `
http_route "wsold" {
  entrypoints = ["web"]
  path_prefix = "/wsold"
  service     = "ws-old"
}
service "ws-old" {
  backend "http://` + ws + `" {}
}
`
	}
	return hcl(`
global { grace_period = "1s" }
entrypoint "web" { address = "127.0.0.1:0" }
entrypoint "tcp" { address = "127.0.0.1:0" }
http_route "ws" {
  entrypoints = ["web"]
  path_prefix = "/ws/"
  service     = "ws"
}
http_route "other%d" {
  entrypoints = ["web"]
  path        = "/other"
  service     = "other"
}
tcp_route "bulk" {
  entrypoints = ["tcp"]
  service     = "bulk"
}
service "ws" {
  backend "http://%s" {}
}
service "bulk" {
  backend %q {}
}
service "other" {
  respond { body = "version %d" }
}
%s`, version, ws, echo, version, old)
}

// TestReloadKeepsWebSocketAndTCP: a WebSocket and a long TCP transfer
// opened before reloads that change other routes and services are alive
// and intact after them; a WebSocket on a route the reload removed is
// closed once the grace period is over.
func TestReloadKeepsWebSocketAndTCP(t *testing.T) {
	wsb := startWSEchoBackend(t)
	echoB := startTCPBackend(t, echo)
	p := startReloadable(t, reloadConnsConfig(wsb.addr, echoB.addr, 0, true))
	web := p.addr("web")

	dialWS := func(path string) *websocket.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		c, _, err := websocket.Dial(ctx, "ws://"+web+path, &websocket.DialOptions{
			HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{wsSubprotocol},
		})
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	ping := func(c *websocket.Conn, msg string) error {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err == nil && string(got) != msg {
			err = fmt.Errorf("echo %q, want %q", got, msg)
		}
		return err
	}
	ws := dialWS("/ws/kept")
	wsOld := dialWS("/wsold/removed")
	for _, c := range []*websocket.Conn{ws, wsOld} {
		if err := ping(c, "before"); err != nil {
			t.Fatal(err)
		}
	}

	// A 16 MiB transfer, paced so that it spans the reloads, echoed back.
	const chunks, chunk = 64, 256 << 10
	tc := dialTCP(t, p.addr("tcp"))
	_ = tc.SetDeadline(time.Now().Add(4 * ioTimeout))
	sent, got := sha256.New(), sha256.New()
	var wg sync.WaitGroup
	var readN int64
	var readErr, writeErr error
	wg.Go(func() { readN, readErr = io.Copy(got, tc) })
	wg.Go(func() {
		rng := rand.NewChaCha8([32]byte{1})
		buf := make([]byte, chunk)
		for range chunks {
			_, _ = rng.Read(buf)
			sent.Write(buf)
			if _, writeErr = tc.Write(buf); writeErr != nil {
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		writeErr = tc.CloseWrite()
	})

	for v := 1; v <= 5; v++ {
		if !p.sighup(t, reloadConnsConfig(wsb.addr, echoB.addr, v, false)) {
			t.Fatalf("reload %d rejected:\n%s", v, p.log.String())
		}
		r := mustDo(t, newH1Client(t), "http://"+web, reqSpec{path: "/other"})
		if want := fmt.Sprintf("version %d", v); r.body != want {
			t.Fatalf("after reload %d: /other = %q, want %q", v, r.body, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	if readErr != nil || writeErr != nil {
		t.Fatalf("TCP transfer across reloads: read %v, write %v", readErr, writeErr)
	}
	if readN != chunks*chunk || !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatalf("TCP transfer across reloads: %d bytes back of %d, or they differ", readN, chunks*chunk)
	}
	if err := ping(ws, "after"); err != nil {
		t.Fatalf("WebSocket of the unchanged route after the reloads: %v", err)
	}
	// The removed route's WebSocket was closed after the 1s grace period
	// (the reloads took longer than that).
	if err := ping(wsOld, "after"); err == nil {
		t.Fatal("WebSocket of the removed route still open after the grace period")
	}
}
