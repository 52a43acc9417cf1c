package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readLines returns path's lines, failing on a line that is not a whole
// JSON object or a file that does not end in a newline.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end in a newline: a line was split", path)
	}
	var out []map[string]any
	for i, l := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s line %d %q is not whole: %v", path, i+1, l, err)
		}
		out = append(out, m)
	}
	return out
}

func reopenWithin(w *Writer, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return w.Reopen(ctx)
}

// TestReopenUnderConcurrentWrites rotates the file twice, as logrotate
// does (rename, then reopen), while goroutines log: every line lands
// whole in exactly one of the three files.
func TestReopenUnderConcurrentWrites(t *testing.T) {
	const writers, perPhase = 4, 3000
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := Open(path, Options{Format: JSON, Queue: 2 * writers * perPhase})
	if err != nil {
		t.Fatal(err)
	}
	if w.Path() != path {
		t.Errorf("Path() = %q, want %q", w.Path(), path)
	}
	rotated := make(chan struct{})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range 2 * perPhase {
				if i == perPhase {
					<-rotated // the second half surely reaches the last file
				}
				w.LogConn(&Conn{Time: t0, Network: "tcp", Route: fmt.Sprintf("%d-%d", g, i)})
			}
		})
	}
	// Rotate while the first half is being written.
	deadline := time.Now().Add(30 * time.Second)
	for w.Written() < perPhase/2 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never wrote")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 2; i++ {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, i)); err != nil {
			t.Fatal(err)
		}
		if err := reopenWithin(w, 10*time.Second); err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
	}
	close(rotated)
	wg.Wait()
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	total := 0
	for _, p := range []string{path + ".1", path + ".2", path} {
		lines := readLines(t, p)
		if p == path+".1" || p == path {
			if len(lines) == 0 {
				t.Errorf("%s got no line", filepath.Base(p))
			}
		}
		for _, l := range lines {
			seen[l["route"].(string)]++
		}
		total += len(lines)
	}
	const want = writers * 2 * perPhase
	if total != want || len(seen) != want {
		t.Errorf("%d lines, %d distinct, want %d of each", total, len(seen), want)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("line %s written %d times", k, n)
		}
	}
	if w.Written() != want || w.Dropped() != 0 {
		t.Errorf("written %d dropped %d, want %d and 0", w.Written(), w.Dropped(), want)
	}
}

// TestReopenFailureKeepsOldFile: when the directory is gone the Writer
// says why and keeps writing to the file it has; once the directory is
// back a reopen succeeds.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "access.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.CloseWithin(10 * time.Second)
	w.LogConn(&Conn{Time: t0, Network: "tcp", Route: "before"})
	// A second name for the open file outlives its directory.
	kept := filepath.Join(base, "kept.log")
	if err := os.Link(path, kept); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = reopenWithin(w, 10*time.Second)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("reopen into a removed directory: %v, want ErrNotExist naming %s", err, path)
	}
	w.LogConn(&Conn{Time: t0, Network: "tcp", Route: "after"})

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := reopenWithin(w, 10*time.Second); err != nil {
		t.Fatalf("reopen once the directory is back: %v", err)
	}
	w.LogConn(&Conn{Time: t0, Network: "tcp", Route: "new"})
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	routes := func(p string) (out []string) {
		for _, l := range readLines(t, p) {
			out = append(out, l["route"].(string))
		}
		return out
	}
	if got := routes(kept); strings.Join(got, ",") != "before,after" {
		t.Errorf("old file has %q, want before,after", got)
	}
	if got := routes(path); strings.Join(got, ",") != "new" {
		t.Errorf("new file has %q, want new", got)
	}
	if err := w.Reopen(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close: %v, want ErrClosed", err)
	}
}

// TestReopenIgnoresStreams: standard output and a caller's writer have no
// path to reopen.
func TestReopenIgnoresStreams(t *testing.T) {
	var out syncBuffer
	w := New(&out, Options{})
	if w.Path() != "" {
		t.Errorf("Path() = %q for a caller's writer", w.Path())
	}
	if err := w.Reopen(context.Background()); err != nil {
		t.Errorf("Reopen on a caller's writer: %v", err)
	}
	w.LogConn(&Conn{Time: t0, Network: "tcp"})
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out.String() == "" {
		t.Error("no line after Reopen")
	}
	s, err := Open("-", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != "" || s.Reopen(context.Background()) != nil {
		t.Error("stdout is reopened")
	}
	if err := s.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var nilW *Writer
	if nilW.Reopen(context.Background()) != nil || nilW.Path() != "" {
		t.Error("a nil Writer reopens")
	}
}

// TestReopenWaitsForAStuckSink: a Reopen behind a write that never returns
// gives up at its deadline rather than hanging its caller.
func TestReopenWaitsForAStuckSink(t *testing.T) {
	sink := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := New(sink, Options{})
	w.path = filepath.Join(t.TempDir(), "unused.log") // as if Open had opened it
	f, err := openFile(w.path)
	if err != nil {
		t.Fatal(err)
	}
	w.file = f
	for {
		w.LogConn(&Conn{Time: t0, Network: "tcp", Route: strings.Repeat("x", 1024)})
		select {
		case <-sink.entered:
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	err = reopenWithin(w, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reopen behind a stuck write: %v, want DeadlineExceeded", err)
	}
	close(sink.release)
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
