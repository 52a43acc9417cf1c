package accesslog

import "sync/atomic"

// Switch is the access log in use, which a reload may replace. The layers
// hold the Switch; each line reads its current Writer with one atomic load,
// so traffic never waits for a swap. A nil Switch, or one holding no
// Writer, logs nothing.
type Switch struct{ cur atomic.Pointer[Writer] }

// NewSwitch returns a Switch holding w (nil: none).
func NewSwitch(w *Writer) *Switch {
	s := &Switch{}
	s.cur.Store(w)
	return s
}

// Load is the current Writer, nil when there is none.
func (s *Switch) Load() *Writer {
	if s == nil {
		return nil
	}
	return s.cur.Load()
}

// Swap makes w current and returns the Writer it replaces, which the
// caller closes: the lines it queued are written and its file is closed.
// A line encoded for the old Writer that finds it closed is encoded again
// for its successor, so none is lost or written twice; when the successor
// is nil (the access log was turned off) it is counted as dropped.
func (s *Switch) Swap(w *Writer) *Writer { return s.cur.Swap(w) }

// Combined reports whether the current Writer uses the combined format,
// whose HTTP lines need the Referer and User-Agent.
func (s *Switch) Combined() bool { return s.Load().Combined() }

// LogHTTP queues one request's line on the current Writer.
func (s *Switch) LogHTTP(e *HTTP) { logVia(s, e, (*Writer).encodeHTTP) }

// LogConn queues one connection's or flow's line on the current Writer.
func (s *Switch) LogConn(e *Conn) { logVia(s, e, (*Writer).encodeConn) }

func logVia[E any](s *Switch, e *E, encode func(*Writer, *E) *[]byte) {
	w := s.Load()
	for w != nil {
		b := encode(w, e)
		if w.offer(b) {
			return
		}
		// w was closed after it was loaded: a reload swapped it out (try
		// its successor, in its format) or the log is shutting down.
		next := s.cur.Load()
		if next == w || next == nil {
			w.drop(b)
			return
		}
		putBuf(b)
		w = next
	}
}
