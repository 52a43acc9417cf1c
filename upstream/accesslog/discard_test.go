package accesslog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestDiscard: Discard removes the file only when Open created it and it
// is still the empty file at the path.
func TestDiscard(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before func(path string) error // before Open
		after  func(path string) error // between Open and Discard
		kept   bool
	}{
		{name: "created and unused", kept: false},
		{name: "existed before", before: func(p string) error { return os.WriteFile(p, nil, 0o600) }, kept: true},
		{name: "written meanwhile", after: func(p string) error { return appendTo(p, "x\n") }, kept: true},
		{name: "replaced at its path", after: func(p string) error {
			if err := os.Rename(p, p+".1"); err != nil {
				return err
			}
			return os.WriteFile(p, nil, 0o600)
		}, kept: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			if tt.before != nil {
				if err := tt.before(path); err != nil {
					t.Fatal(err)
				}
			}
			w, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.after != nil {
				if err := tt.after(path); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Discard(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); (err == nil) != tt.kept {
				t.Fatalf("after Discard: stat %v; want kept = %v", err, tt.kept)
			}
		})
	}
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}
