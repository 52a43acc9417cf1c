package l7

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
	"unsafe"
)

func TestH1ctxCancel(t *testing.T) {
	c := &h1ctx{Context: context.Background()}
	ran := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(ran) })
	stopped := make(chan struct{})
	stop2 := context.AfterFunc(c, func() { close(stopped) })
	if !stop2() {
		t.Fatal("stop of a pending AfterFunc reported false")
	}
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	if c.Err() != nil || child.Err() != nil {
		t.Fatal("canceled too early")
	}
	c.cancel(context.Canceled)
	c.cancel(context.DeadlineExceeded) // the first cancel wins
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run")
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("derived context not canceled")
	}
	select {
	case <-stopped:
		t.Fatal("stopped AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
	if stop() {
		t.Fatal("stop after the run reported true")
	}
	if c.Err() != context.Canceled || context.Cause(c) != context.Canceled {
		t.Fatalf("Err = %v, Cause = %v", c.Err(), context.Cause(c))
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done of a canceled context is open")
	}
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc on a canceled context did not run")
	}
}

// TestH1ctxThroughReqInfo: the entry's reqInfo wraps the request context;
// AfterFunc must reach the h1ctx through it (no goroutine per
// registration, and cancellation arrives).
func TestH1ctxThroughReqInfo(t *testing.T) {
	c := &h1ctx{Context: context.Background()}
	ri := &reqInfo{Context: c}
	ran := make(chan struct{})
	context.AfterFunc(ri, func() { close(ran) })
	c.mu.Lock()
	n := len(c.afters)
	c.mu.Unlock()
	if n != 1 {
		t.Fatalf("registrations on the h1ctx = %d, want 1", n)
	}
	c.cancel(context.Canceled)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc through reqInfo did not run")
	}
}

// setWaker: cancel wakes a read blocked on the registered connection, and
// clearWaker says so.
func TestH1ctxWaker(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &h1ctx{Context: context.Background()}
	if wakerOf(&reqInfo{Context: c}) != c {
		t.Fatal("wakerOf does not find the h1ctx under a reqInfo")
	}
	if !c.setWaker(a) || !c.clearWaker() {
		t.Fatal("an unfired waker reports fired")
	}
	c.setWaker(a)
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.cancel(context.Canceled)
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not wake the read")
	}
	if c.clearWaker() {
		t.Fatal("clearWaker after a wake-up reports not fired")
	}
	if c.setWaker(a) {
		t.Fatal("setWaker on a canceled context succeeded")
	}
}

// TestH1reqSizeClass: h1req, with the 8-byte header the runtime adds to an
// object over 512 bytes that holds pointers, stays within the 1024-byte
// size class; one field more moves every request to 1152.
func TestH1reqSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(h1req{}) + 8; size > 1024 {
		t.Fatalf("h1req takes %d bytes with its malloc header: over its 1024-byte size class", size)
	}
}

// TestNewInfoTakesRequestSlotOnce: the Entry's reqInfo over the HTTP/1
// server is the one allocated with the request, once; a second newInfo on
// the same context, or one over another context, gets its own.
func TestNewInfoTakesRequestSlotOnce(t *testing.T) {
	x := new(h1req)
	x.ctx.Context = context.Background()
	x.ctx.info = &x.info
	ri := newInfo(nil, &x.ctx, "web")
	if ri != &x.info || ri.Context != &x.ctx || ri.entrypoint != "web" {
		t.Fatalf("first newInfo = %p (ctx %v, entrypoint %q), want the request's slot %p", ri, ri.Context, ri.entrypoint, &x.info)
	}
	again := newInfo(nil, &x.ctx, "web")
	if again == ri || again.Context != &x.ctx {
		t.Fatalf("second newInfo on the same context reused the slot or lost the context")
	}
	other := newInfo(nil, context.Background(), "web")
	if other == ri || other == again {
		t.Fatal("newInfo over another context shared a reqInfo")
	}
}
