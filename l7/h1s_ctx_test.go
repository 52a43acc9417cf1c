package l7

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
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
