package l7

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// TestH1WatchOneReader: a second watch while one is reading (a request's
// timer that fired as it ended, still watching when the next request's
// timer fires) does not start a second reader: two readers would each take
// a byte of a pipelined request into the one slot, losing one.
func TestH1WatchOneReader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	c := &h1conn{s: &h1Server{}, nc: nc}
	c.src.nc = nc
	c.br = bufio.NewReader(&c.src)
	c.inHandler = true
	watching := func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.watching
	}
	done := make(chan struct{}, 2)
	go func() { c.watch(); done <- struct{}{} }()
	for deadline := time.Now().Add(5 * time.Second); !watching(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first watcher did not start")
		}
	}
	go func() { c.watch(); done <- struct{}{} }()
	time.Sleep(20 * time.Millisecond) // a second reader, if any, is in Read now
	if _, err := io.WriteString(client, "AB"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a watcher is still reading after the client sent two bytes")
		}
	}
	c.wmu.Lock()
	c.inHandler = false
	c.wmu.Unlock()
	// The watcher kept the first byte; the second is still in the socket.
	nc.SetReadDeadline(time.Now().Add(time.Second))
	got := make([]byte, 2)
	n, err := io.ReadFull(c.br, got)
	if err != nil || string(got[:n]) != "AB" {
		t.Fatalf("read %q (%v) after the watch, want \"AB\"", got[:n], err)
	}
}
