package accesslog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clfConn matches a whole CLF TCP line; its group is the route.
var clfConn = regexp.MustCompile(`^- - - \[[^]]+\] "TCP \S* (\S+) \S*" \S+ \d+ \d+ [0-9.]+$`)

// routesIn returns the route of every line of the file at path, in order;
// JSON lines and CLF lines both parse, and a line that is neither (torn)
// fails the test.
func routesIn(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, `"route":"`); strings.HasPrefix(line, "{") && i > 0 && strings.HasSuffix(line, "}") {
			r := line[i+len(`"route":"`):]
			out = append(out, r[:strings.IndexByte(r, '"')])
			continue
		}
		m := clfConn.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: torn or unknown line %q", filepath.Base(path), line)
		}
		out = append(out, m[1])
	}
	return out
}

// TestSwitchSwapUnderConcurrentWrites swaps the Switch's Writer several
// times (file and format change) while goroutines log through it, and
// closes each old Writer right away: every line lands exactly once, whole,
// and a line logged after Swap returned lands in the new file.
func TestSwitchSwapUnderConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	var written, dropped atomic.Int64
	open := func(i int, follows *Writer) *Writer {
		t.Helper()
		w, err := Open(filepath.Join(dir, fmt.Sprintf("%d.log", i)), Options{
			Format: []Format{JSON, Common}[i%2], Queue: 1 << 16, Follows: follows,
			OnWrite: func() { written.Add(1) }, OnDrop: func() { dropped.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	const swaps, senders = 6, 4
	s := NewSwitch(open(0, nil))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for g := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.LogConn(&Conn{Time: t0, Network: "tcp", Route: fmt.Sprintf("g%d-%d", g, i)})
				sent.Add(1)
			}
		})
	}
	for i := 1; i <= swaps; i++ {
		for n := sent.Load(); sent.Load() < n+200; {
			time.Sleep(time.Millisecond) // let lines flow into this Writer
		}
		old := s.Swap(open(i, s.Load()))
		s.LogConn(&Conn{Time: t0, Network: "tcp", Route: fmt.Sprintf("marker-%d", i)})
		if err := old.CloseWithin(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := s.Load().CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for i := 0; i <= swaps; i++ {
		for _, r := range routesIn(t, filepath.Join(dir, fmt.Sprintf("%d.log", i))) {
			total++
			if prev, ok := seen[r]; ok {
				t.Errorf("line %s in file %d and in file %d", r, prev, i)
			}
			seen[r] = i
		}
	}
	for i := 1; i <= swaps; i++ {
		if f, ok := seen[fmt.Sprintf("marker-%d", i)]; !ok || f != i {
			t.Errorf("marker-%d logged after swap %d is in file %d (found %v), want %d", i, i, f, ok, i)
		}
	}
	if want := int(sent.Load()) + swaps; total != want || written.Load() != int64(want) || dropped.Load() != 0 {
		t.Errorf("%d lines in the files, %d written, %d dropped; want %d, %d, 0", total, written.Load(), dropped.Load(), want, want)
	}
}

// gatedWriter blocks its first Write until open is closed.
type gatedWriter struct {
	open chan struct{}
	out  *syncBuffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.out.Write(p)
}

// TestFollowsWritesAfterTheOldWriter: a Writer that follows another one on
// the same sink writes nothing until the old one has written its last
// line, even while the old one is stuck.
func TestFollowsWritesAfterTheOldWriter(t *testing.T) {
	var out syncBuffer
	gate := &gatedWriter{open: make(chan struct{}), out: &out}
	old := New(gate, Options{})
	s := NewSwitch(old)
	s.LogConn(&Conn{Time: t0, Network: "tcp", Route: "old"})
	next := New(&out, Options{Format: Common, Follows: old})
	s.Swap(next)
	s.LogConn(&Conn{Time: t0, Network: "tcp", Route: "new"})
	// Without Follows the new line is written at once; give it the chance.
	for deadline := time.Now().Add(200 * time.Millisecond); next.Written() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(gate.open)
	if err := old.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := next.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{`) || !strings.Contains(lines[1], " new ") {
		t.Fatalf("lines %q, want the old JSON line, then the new CLF one", lines)
	}
}

// TestSwitchOff: swapped to nil, the Switch logs nothing, and a line that
// finds the old Writer closed is counted as dropped, not lost unseen.
func TestSwitchOff(t *testing.T) {
	var out syncBuffer
	w := New(&out, Options{})
	s := NewSwitch(w)
	s.LogConn(&Conn{Time: t0, Network: "tcp", Route: "kept"})
	if old := s.Swap(nil); old != w {
		t.Fatalf("Swap returned %p, want %p", old, w)
	}
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.LogConn(&Conn{Time: t0, Network: "tcp", Route: "after"})
	if s.Combined() || s.Load() != nil {
		t.Error("a Switch holding nil has a Writer")
	}
	// A sender that loaded w before the swap and offers after Close.
	logVia(NewSwitch(w), &Conn{Network: "tcp"}, (*Writer).encodeConn)
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `"kept"`) {
		t.Errorf("output %q, want the one line logged before the swap", got)
	}
	if w.Written() != 1 || w.Dropped() != 1 {
		t.Errorf("written %d dropped %d, want 1 and 1", w.Written(), w.Dropped())
	}
	var nilSwitch *Switch
	nilSwitch.LogHTTP(sampleHTTP())
	nilSwitch.LogConn(&Conn{})
}

// TestCloseCountsEveryLine closes Writers while goroutines log to them:
// every line is written or counted as dropped, none is left unseen in the
// queue after its last drain.
func TestCloseCountsEveryLine(t *testing.T) {
	for range 100 {
		w := New(discard{}, Options{Queue: 1 << 12})
		var sent atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; i < 1000; i++ {
					w.LogConn(&Conn{Time: t0, Network: "tcp"})
					sent.Add(1)
				}
			})
		}
		for sent.Load() < 100 {
			runtime.Gosched()
		}
		if err := w.CloseWithin(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if got := w.Written() + w.Dropped(); got != uint64(sent.Load()) {
			t.Fatalf("%d lines written or dropped of %d logged", got, sent.Load())
		}
	}
}
