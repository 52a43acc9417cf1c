package server

import (
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher calls fire when the content of any of its files changes. It
// watches the directories holding the files (and, for a symlink, the
// directory of its target) rather than the files: editors replace a file
// by renaming a new one over it, and Kubernetes swaps a `..data` symlink,
// and neither is an event on the old file. Any event in those directories
// starts a debounce timer; when it fires, the files' content is hashed and
// compared with the last hash, so only a real change reloads.
type watcher struct {
	fw       *fsnotify.Watcher
	debounce time.Duration
	log      *slog.Logger
	fire     func()

	mu     sync.Mutex
	files  []string
	dirs   map[string]bool
	hashes map[string][sha256.Size]byte // per file: the content last seen

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newWatcher(debounce time.Duration, log *slog.Logger, fire func()) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{fw: fw, debounce: debounce, log: log, fire: fire, dirs: map[string]bool{},
		hashes: map[string][sha256.Size]byte{}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// set replaces the watched files. Files watched already keep the content
// last seen as their baseline (a change made while a reload ran is still a
// change); new ones take their current content.
func (w *watcher) set(files []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files = files
	hashes := make(map[string][sha256.Size]byte, len(files))
	for _, f := range files {
		if h, ok := w.hashes[f]; ok {
			hashes[f] = h
		} else {
			hashes[f] = fingerprintFile(f)
		}
	}
	w.hashes = hashes
	w.refreshDirs()
}

// changed rehashes the files and reports whether any differs from the
// last time; w.mu must be held.
func (w *watcher) changed() bool {
	changed := false
	for _, f := range w.files {
		h := fingerprintFile(f)
		if h != w.hashes[f] {
			changed = true
			w.hashes[f] = h
		}
	}
	return changed
}

// refreshDirs watches the directories of the files now; w.mu must be held.
func (w *watcher) refreshDirs() {
	want := map[string]bool{}
	for _, f := range w.files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			want[abs] = true
		} else {
			want[filepath.Dir(abs)] = true
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			if fi, err := os.Stat(real); err == nil && fi.IsDir() {
				want[real] = true
			} else {
				want[filepath.Dir(real)] = true
			}
		}
	}
	for d := range want {
		if !w.dirs[d] {
			if err := w.fw.Add(d); err != nil {
				w.log.Warn("file watch: cannot watch directory", "dir", d, "error", err)
				delete(want, d)
			}
		}
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fw.Remove(d)
		}
	}
	w.dirs = want
}

func (w *watcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.stop:
			timer.Stop()
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.debounce)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("file watch", "error", err)
		case <-timer.C:
			w.mu.Lock()
			changed := w.changed()
			w.refreshDirs() // a symlink may point elsewhere now
			w.mu.Unlock()
			if changed {
				w.fire()
			}
		}
	}
}

// close stops the watcher and waits for its goroutine, unless called from
// that goroutine (a reload it fired turned watching off): then the
// goroutine ends by itself right after.
func (w *watcher) close() {
	w.once.Do(func() {
		close(w.stop)
		w.fw.Close()
	})
}

// wait waits for the watcher's goroutine to end after close.
func (w *watcher) wait() { <-w.done }

// fingerprintFile hashes the content of a file; a directory stands for
// its *.hcl files (names and content). A file that cannot be read counts
// as its error, so that it appearing again is a change.
func fingerprintFile(f string) [sha256.Size]byte {
	h := sha256.New()
	add := func(name string) {
		b, err := os.ReadFile(name)
		if err != nil {
			b = []byte("\x00error: " + err.Error())
		}
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	fi, err := os.Stat(f)
	var ents []os.DirEntry
	if err == nil && fi.IsDir() {
		ents, err = os.ReadDir(f)
	}
	if err != nil || !fi.IsDir() {
		add(f)
	} else {
		var names []string
		for _, e := range ents {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl") {
				names = append(names, filepath.Join(f, e.Name()))
			}
		}
		sort.Strings(names)
		for _, n := range names {
			add(n)
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
