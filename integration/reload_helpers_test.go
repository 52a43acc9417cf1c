//go:build linux

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Reload log lines (server.Reloader).
const (
	logReloaded = `"msg":"configuration reloaded"`
	logRejected = `"msg":"configuration reload rejected`
)

// reloadable is a proxynow process run from a config file the test
// rewrites.
type reloadable struct {
	*proc
	file string
	// The log scanned so far and what it held: counting scans only the new
	// bytes, so waiting for a reload costs the load generators (in this
	// process) next to nothing.
	scanned      int
	ok, rejected int
	partial      []byte
}

// startReloadable writes hcl (with a JSON log block) to a file and runs
// proxynow on it.
func startReloadable(t *testing.T, hcl string) *reloadable {
	t.Helper()
	file := filepath.Join(t.TempDir(), "proxynow.hcl")
	writeConfig(t, file, hcl)
	return &reloadable{proc: startProxyArgs(t, "run", "-config", file), file: file}
}

// writeConfig writes a config as editors do: a new file renamed over the
// old one.
func writeConfig(t *testing.T, file, hcl string) {
	t.Helper()
	if !strings.Contains(hcl, "log {") {
		hcl = "log {\n  level  = \"info\"\n  format = \"json\"\n}\n" + hcl
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// reloads counts the reloads logged so far: done and rejected.
func (r *reloadable) reloads() (ok, rejected int) {
	r.log.mu.Lock()
	b := r.log.all.Bytes()
	fresh := append(r.partial, b[r.scanned:]...)
	r.scanned = len(b)
	r.log.mu.Unlock()
	end := bytes.LastIndexByte(fresh, '\n') + 1
	r.ok += bytes.Count(fresh[:end], []byte(logReloaded))
	r.rejected += bytes.Count(fresh[:end], []byte(logRejected))
	r.partial = append([]byte(nil), fresh[end:]...)
	return r.ok, r.rejected
}

// sighup writes hcl, sends SIGHUP and waits for the reload's log line; it
// reports whether the configuration was accepted.
func (r *reloadable) sighup(t *testing.T, hcl string) bool {
	t.Helper()
	ok0, rej0 := r.reloads()
	writeConfig(t, r.file, hcl)
	r.signal(syscall.SIGHUP)
	return r.waitReload(t, ok0, rej0)
}

// waitReload waits until one more reload than ok0+rej0 was logged.
func (r *reloadable) waitReload(t *testing.T, ok0, rej0 int) bool {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		ok, rej := r.reloads()
		if ok > ok0 {
			return true
		}
		if rej > rej0 {
			return false
		}
		if r.exited() || time.Now().After(deadline) {
			t.Fatalf("no reload logged within %v (exited: %v)", readyTimeout, r.exited())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fdCount is the number of open file descriptors of pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatalf("fd count: %v", err)
	}
	return len(ents)
}
