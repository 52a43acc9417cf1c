//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const accessLogged = `
log {
  access {
    path = %q
  }
}
entrypoint "e" { address = "127.0.0.1:0" }
http_route "all" {
  entrypoints = ["e"]
  service     = "hello"
}
service "hello" {
  respond { body = "hello" }
}
`

// rotation is a running `proxynow run` with an access log file.
type rotation struct {
	path   string
	addr   string
	stderr *syncBuffer
	done   chan int
}

func startRotation(t *testing.T, stop chan os.Signal) *rotation {
	t.Helper()
	r := &rotation{path: filepath.Join(t.TempDir(), "access.log"), stderr: &syncBuffer{}, done: make(chan int, 1)}
	cfg := write(t, "run.hcl", fmt.Sprintf(accessLogged, r.path))
	go func() { r.done <- run([]string{"run", "-config", cfg}, &bytes.Buffer{}, r.stderr, stop) }()
	r.addr = waitListening(t, r.stderr)
	return r
}

func (r *rotation) get(t *testing.T) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + r.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// waitFileLines waits until path holds n lines.
func waitFileLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		got := bytes.Count(b, []byte("\n"))
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%s has %d lines, want %d:\n%s", filepath.Base(path), got, n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rotate logs a line, renames the file as logrotate does, sends sig (the
// signal run receives) and checks that the next line goes to a new file.
func (r *rotation) rotate(t *testing.T, send func()) {
	t.Helper()
	r.get(t)
	waitFileLines(t, r.path, 1)
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		t.Fatal(err)
	}
	send()
	// The reopen creates the file; then a request's line lands in it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(r.path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new access log file after the signal:\n%s", r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.get(t)
	waitFileLines(t, r.path, 1)
	waitFileLines(t, r.path+".1", 1)
	if l := r.stderr.String(); !strings.Contains(l, `msg="access log reopened" trigger=SIGUSR1`) {
		t.Errorf("the reopen is not logged:\n%s", l)
	}
}

func (r *rotation) stopped(t *testing.T) {
	t.Helper()
	select {
	case code := <-r.done:
		if code != exitOK {
			t.Fatalf("exit %d, want 0\n%s", code, r.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
}

// TestRunReopensAccessLogOnSIGUSR1 drives run's signal loop.
func TestRunReopensAccessLogOnSIGUSR1(t *testing.T) {
	stop := make(chan os.Signal, 2)
	r := startRotation(t, stop)
	r.rotate(t, func() { stop <- syscall.SIGUSR1 })
	stop <- syscall.SIGTERM
	r.stopped(t)
}

// TestRunHandlesARealSIGUSR1 sends the process a real SIGUSR1, to check
// that run asks for it. The test asks for it too, so that a missing
// signal.Notify fails the test instead of killing the process.
func TestRunHandlesARealSIGUSR1(t *testing.T) {
	if !slices.Contains(runSignals(), os.Signal(syscall.SIGUSR1)) {
		t.Fatalf("run does not handle SIGUSR1: %v", runSignals())
	}
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, syscall.SIGUSR1, syscall.SIGTERM)
	defer signal.Stop(guard)
	r := startRotation(t, nil) // run's own signal.Notify precedes "listening"
	r.rotate(t, func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.stopped(t)
}
