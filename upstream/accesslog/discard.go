package accesslog

import (
	"context"
	"errors"
	"io/fs"
	"os"
)

// openNew opens path for appending, as openFile, and reports whether this
// call created the file. O_EXCL makes the answer exact when another
// process creates the file at the same moment; a file removed between the
// two opens is opened again, then counted as not created (never removed).
func openNew(path string) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, fileMode)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return f, err == nil, err
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = openFile(path)
	}
	return f, false, err
}

// Discard closes a Writer that was opened but never used, as Close does,
// and removes its file if Open created it and the file is still empty and
// still at its path: a reload that opened a new access log and then failed
// leaves no empty file behind. A file that existed before Open, or that
// has taken a line meanwhile, is kept.
func (w *Writer) Discard(ctx context.Context) error {
	if w == nil {
		return nil
	}
	var opened os.FileInfo
	if w.created {
		w.mu.Lock()
		opened, _ = w.file.Stat()
		w.mu.Unlock()
	}
	err := w.Close(ctx)
	if opened == nil {
		return err
	}
	if now, serr := os.Stat(w.path); serr == nil && os.SameFile(opened, now) && now.Size() == 0 {
		if rerr := os.Remove(w.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
