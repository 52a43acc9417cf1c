package accesslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
)

// fileMode is the access log file's mode when Open or Reopen creates it.
const fileMode = 0o640

// ErrClosed is returned by Reopen once Close has begun.
var ErrClosed = errors.New("access log: closed")

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
}

// Path is the file Open opened; "" for standard output or a writer New was
// given, which Reopen leaves alone.
func (w *Writer) Path() string {
	if w == nil {
		return ""
	}
	return w.path
}

// Reopen opens the Writer's path again and moves the lines that follow to
// the new file, for log rotation: logrotate renames the file, then asks the
// process to reopen (nginx's and Traefik's SIGUSR1). The writer goroutine
// does it between two lines, so no line is split across files or lost:
// lines logged before the call go to the old file, lines logged after it
// returns to the new one, and lines logged meanwhile wait in the queue as
// usual, so traffic does not wait. When the open fails (the directory is gone, permissions), the
// Writer keeps writing to the file it has and Reopen says why. For
// standard output or a writer given to New it does nothing and returns
// nil. It returns ErrClosed after Close, and ctx's cause if the writer
// goroutine does not answer in time (a sink stuck in a write).
func (w *Writer) Reopen(ctx context.Context) error {
	if w == nil || w.path == "" {
		return nil
	}
	if w.closed.Load() {
		return ErrClosed
	}
	reply := make(chan error, 1) // the writer never waits for us
	select {
	case w.reopen <- reply:
	case <-w.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("access log: reopen %s: %w", w.path, context.Cause(ctx))
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("access log: reopen %s: %w", w.path, context.Cause(ctx))
	}
}

// swapFile runs on the writer goroutine: it opens the path anew, flushes
// bw's lines into the old file, points bw at the new one and closes the
// old one.
func (w *Writer) swapFile(bw *bufio.Writer) error {
	f, err := openFile(w.path)
	if err != nil {
		return fmt.Errorf("access log: reopen: %w", err)
	}
	// run flushes before it calls swapFile, so bw is empty here; the
	// flush guards that invariant. A failed flush loses
	// what the old file could not take, as it would have without the
	// reopen; Reset clears bw's sticky error.
	_ = bw.Flush()
	bw.Reset(f)
	w.mu.Lock()
	old := w.file
	w.file = f
	w.mu.Unlock()
	_ = old.Close()
	return nil
}

// closeFile closes the current file; Close calls it again after a stuck
// write, when a Reopen may have swapped the file, so a second call on the
// same file is harmless.
func (w *Writer) closeFile() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.file.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
