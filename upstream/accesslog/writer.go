package accesslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Format is the shape of a line.
type Format int

// Formats: JSON (one object per line), and the Common and Combined Log
// Formats of Apache and nginx for HTTP requests.
const (
	JSON Format = iota
	Common
	Combined
)

// ParseFormat maps config's format names ("json", "common", "combined").
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json", "":
		return JSON, nil
	case "common":
		return Common, nil
	case "combined":
		return Combined, nil
	}
	return 0, fmt.Errorf("unknown access log format %q", s)
}

// DefaultQueue is the number of lines that may wait for the writer.
const DefaultQueue = 8192

// Options configure a Writer.
type Options struct {
	Format Format
	// Queue bounds the lines waiting to be written; beyond it lines are
	// dropped. Default DefaultQueue.
	Queue int
	// OnWrite and OnDrop, when set, are called once per line written or
	// dropped (the metrics' counters' Inc).
	OnWrite func()
	OnDrop  func()
	// Follows, when set, is the Writer this one replaces (a reload that
	// changed the access log): lines queue as usual, but none is written
	// before Follows' Close has written its last one, so the old lines
	// come first and the two never interleave in a file they share.
	Follows *Writer
}

// Writer is an asynchronous, bounded access log. A nil *Writer logs
// nothing, so callers need no check.
type Writer struct {
	out    io.Writer
	path   string // the file Open opened, "" for stdout or a caller's writer
	format Format
	queue  chan *[]byte
	// reopen carries Reopen's requests to the writer goroutine, which
	// answers on the channel sent.
	reopen chan chan error
	// mu guards file, which the writer goroutine swaps on Reopen and Close
	// closes to unblock a stuck write. nil when path is "".
	mu     sync.Mutex
	file   *os.File
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once
	// senders counts the goroutines between their check of closed and
	// their send on queue: Close waits for them before it stops the
	// writer goroutine, so no line lands in the queue after its last drain.
	senders atomic.Int64
	// after, when set, holds the writer goroutine back until it is closed
	// (Options.Follows' done).
	after <-chan struct{}

	// created: Open created the file at path, which Discard may remove.
	created bool
	clock   clock
	written atomic.Uint64
	dropped atomic.Uint64
	onWrite func()
	onDrop  func()
}

// Open opens path for appending ("-" or "stdout": the process's standard
// output) and starts a Writer on it.
func Open(path string, o Options) (*Writer, error) {
	if path == "-" || path == "stdout" {
		return New(os.Stdout, o), nil
	}
	f, created, err := openNew(path)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	w := newWriter(f, o)
	w.path, w.file, w.created = path, f, created
	go w.run()
	return w, nil
}

// New starts a Writer on out. Close stops it.
func New(out io.Writer, o Options) *Writer {
	w := newWriter(out, o)
	go w.run()
	return w
}

func newWriter(out io.Writer, o Options) *Writer {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	w := &Writer{
		out: out, format: o.Format,
		queue: make(chan *[]byte, o.Queue), stop: make(chan struct{}), done: make(chan struct{}),
		reopen:  make(chan chan error),
		onWrite: o.OnWrite, onDrop: o.OnDrop,
	}
	if o.Follows != nil {
		w.after = o.Follows.done
	}
	return w
}

// Combined reports the combined format, whose lines need the Referer and
// User-Agent.
func (w *Writer) Combined() bool { return w != nil && w.format == Combined }

// Written and Dropped count lines since New.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Dropped counts lines dropped because the queue was full or the Writer
// closed.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// lineBufs hold encoded lines between the encoder and the writer.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return lineBufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 16<<10 {
		return // a huge line; let it go rather than pin it in the pool
	}
	*b = (*b)[:0]
	lineBufs.Put(b)
}

// enqueue hands a finished line to the writer, or drops it at once.
func (w *Writer) enqueue(b *[]byte) {
	if !w.offer(b) {
		w.drop(b)
	}
}

// offer queues b, or drops it when the queue is full. Once Close has
// begun it returns false and leaves b to the caller.
func (w *Writer) offer(b *[]byte) bool {
	// Close stores closed, then reads senders; this adds to senders, then
	// reads closed (sequentially consistent atomics): either this sees
	// closed, or Close waits for this send.
	w.senders.Add(1)
	defer w.senders.Add(-1)
	if w.closed.Load() {
		return false
	}
	select {
	case w.queue <- b:
	default:
		w.drop(b)
	}
	return true
}

func (w *Writer) drop(b *[]byte) {
	putBuf(b)
	w.dropped.Add(1)
	if w.onDrop != nil {
		w.onDrop()
	}
}

func (w *Writer) run() {
	defer close(w.done)
	if w.after != nil {
		// Closed before the Writer it follows finished (a reload that
		// failed after opening it): nothing was queued, nothing waits.
		select {
		case <-w.after:
		case <-w.stop:
		}
	}
	bw := bufio.NewWriterSize(w.out, 64<<10)
	failed := false
	write := func(b *[]byte) {
		if !failed {
			if _, err := bw.Write(*b); err != nil {
				// A broken sink (disk full, closed pipe) drops what follows;
				// the counters tell the operator.
				failed = true
			}
		}
		if failed {
			w.dropped.Add(1)
			if w.onDrop != nil {
				w.onDrop()
			}
		} else {
			w.written.Add(1)
			if w.onWrite != nil {
				w.onWrite()
			}
		}
		putBuf(b)
	}
	flush := func() {
		if !failed {
			failed = bw.Flush() != nil
		}
	}
	// A reopen is served between two lines. The lines already queued when
	// it came (logged before Reopen was called) go to the old file first;
	// counting them bounds the work under steady traffic.
	reopen := func(reply chan error) {
		for n := len(w.queue); n > 0; n-- {
			write(<-w.queue) // only this goroutine receives: n are there
		}
		flush()
		err := w.swapFile(bw)
		if err == nil {
			failed = false // a fresh file: a full disk may have been rotated away
		}
		reply <- err
	}
	drain := func() {
		for {
			select {
			case b := <-w.queue:
				write(b)
			default:
				flush()
				return
			}
		}
	}
	// Idle, the writer blocks on the queue; once lines flow it drains the
	// queue every batchInterval instead, so that under load a request's
	// line does not cost a goroutine wake-up.
	batch := time.NewTimer(batchInterval)
	defer batch.Stop()
	for {
		select {
		case b := <-w.queue:
			write(b)
		case r := <-w.reopen:
			reopen(r)
			continue
		case <-w.stop:
			drain()
			return
		}
		for {
			drain()
			batch.Reset(batchInterval)
			select {
			case <-batch.C:
			case r := <-w.reopen:
				// The lines queued meanwhile are drained into the new file at
				// the top of the loop; Reset there drops a stale tick (Go 1.23
				// timers).
				reopen(r)
			case <-w.stop:
				drain()
				return
			}
			if len(w.queue) == 0 {
				break // idle again: the line waiting next wakes the writer
			}
		}
	}
}

// batchInterval is how long lines may wait in the queue while they keep
// coming: at 100k lines/s, 200 lines, far below DefaultQueue.
const batchInterval = 2 * time.Millisecond

// Close stops accepting lines, writes those queued and flushes. If the sink
// is stuck past ctx, a file the Writer opened is closed to unblock it and
// the lines still queued are lost; Close then returns ctx's error.
func (w *Writer) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.once.Do(func() {
		w.closed.Store(true)
		// A sender that missed closed is inside a non-blocking send.
		for w.senders.Load() != 0 {
			runtime.Gosched()
		}
		close(w.stop)
	})
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		err = ctx.Err()
		if w.path == "" {
			return err // the caller owns the writer: it must unblock it
		}
		_ = w.closeFile()
		<-w.done
		_ = w.closeFile() // a Reopen may have swapped in another file meanwhile
		return err
	}
	if w.path != "" {
		err = w.closeFile()
	}
	return err
}

// errStuck is the cause of CloseWithin's timeout.
var errStuck = errors.New("access log: sink stuck")

// CloseWithin is Close with a timeout.
func (w *Writer) CloseWithin(d time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(context.Background(), d, errStuck)
	defer cancel()
	return w.Close(ctx)
}
