package l7

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// flushPolicy is how often a response is flushed to the client while its
// body is copied: never before the end (0; net/http's buffered writer then
// sends a small response in one write), after every write (< 0), or at
// most that long after a write (> 0).
func (p *Proxy) flushPolicy(res *http.Response) time.Duration {
	if isEventStream(res.Header["Content-Type"]) || res.ContentLength == -1 {
		// Events must reach the client as they are produced; a body of
		// unknown length may be a stream too.
		return -1
	}
	return p.flushInterval
}

// isEventStream reports a text/event-stream media type, parameters aside,
// without mime.ParseMediaType's allocations.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	v, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(v), "text/event-stream")
}

// copyResponse copies the backend's body to the client through a pooled
// buffer, flushing as flushPolicy says.
func (p *Proxy) copyResponse(w http.ResponseWriter, res *http.Response) error {
	buf := copyBufs.Get().(*[copyBufSize]byte)
	defer copyBufs.Put(buf)
	var dst io.Writer = w
	switch fi := p.flushPolicy(res); {
	case fi < 0:
		dst = flushEach{w: w, rc: http.NewResponseController(w)}
	case fi > 0:
		lw := &latencyWriter{w: w, rc: http.NewResponseController(w), latency: fi}
		defer lw.stop()
		dst = lw
	}
	for {
		nr, rerr := res.Body.Read(buf[:])
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// flushEach flushes after every write.
type flushEach struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushEach) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// latencyWriter flushes at most latency after a write that was not yet
// flushed (ReverseProxy's maxLatencyWriter).
type latencyWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	latency time.Duration

	mu      sync.Mutex // guards the writer against the timer's flush
	t       *time.Timer
	pending bool
}

func (l *latencyWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if l.pending {
		return n, err
	}
	if l.t == nil {
		l.t = time.AfterFunc(l.latency, l.delayedFlush)
	} else {
		l.t.Reset(l.latency)
	}
	l.pending = true
	return n, err
}

func (l *latencyWriter) delayedFlush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.pending { // stop ran before this timer's goroutine got the lock
		return
	}
	_ = l.rc.Flush()
	l.pending = false
}

func (l *latencyWriter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = false
	if l.t != nil {
		l.t.Stop()
	}
}

// tunnel completes a 101 Switching Protocols: it checks that the backend
// switched to what the client asked for, hijacks the client connection,
// writes the 101 and then copies both ways until either side ends.
func (p *Proxy) tunnel(w http.ResponseWriter, out *http.Request, res *http.Response, reqUp string, ri *reqInfo) {
	resUp := upgradeType(res.Header)
	switch {
	case !isPrint(resUp):
		res.Body.Close()
		p.fail(w, out, ri, fmt.Errorf("backend tried to switch to invalid protocol %q", resUp))
		return
	case reqUp == "" || !strings.EqualFold(reqUp, resUp):
		res.Body.Close()
		p.fail(w, out, ri, fmt.Errorf("backend tried to switch protocol %q when %q was requested", resUp, reqUp))
		return
	}
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		p.fail(w, out, ri, errors.New("internal error: 101 switching protocols response with non-writable body"))
		return
	}
	defer backConn.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.fail(w, out, ri, fmt.Errorf("hijack on protocol switch: %w", err))
		return
	}
	defer conn.Close()
	// The client going away ends the tunnel even while both copies block.
	stop := context.AfterFunc(out.Context(), func() { backConn.Close() })
	defer stop()

	copyHeader(w.Header(), res.Header)
	res.Header = w.Header()
	res.Body = nil // res.Write writes the head only; the body is backConn
	if err := res.Write(brw); err != nil {
		p.log.Debug("upgrade: response write failed", "service", p.service, "error", err)
		return
	}
	if err := brw.Flush(); err != nil {
		p.log.Debug("upgrade: response flush failed", "service", p.service, "error", err)
		return
	}
	errc := make(chan error, 2)
	go pump(conn, backConn, errc)
	// The hijacked reader may hold bytes the client sent after its request.
	go pump(backConn, brw.Reader, errc)
	// A side that ended with an error ends the tunnel: the deferred closes
	// stop the other copy. After a clean half-close, wait for the other.
	if err := <-errc; err == nil {
		<-errc
	}
}

// pump copies src to dst and half-closes dst when src ends cleanly.
func pump(dst io.Writer, src io.Reader, errc chan<- error) {
	if _, err := io.Copy(dst, src); err != nil {
		errc <- err
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		errc <- cw.CloseWrite()
		return
	}
	errc <- errCopyDone
}

var errCopyDone = errors.New("tunnel copy complete")
