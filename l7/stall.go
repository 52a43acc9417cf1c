package l7

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/quic-go/quic-go/http3"
)

// stallDeadline moves a write deadline on before each write, lazily: only
// once it would move by more than a sixteenth of the stall timeout. A busy
// writer then changes its deadline (a runtime timer update) every few
// seconds instead of per write, and a write fails after between 15/16 of
// the timeout and the whole of it without progress. The deadline must be
// one that only ends writes in progress or begun after it (net.Conn's,
// quic-go's stream's): a pause longer than the timeout between writes is
// fine, since the next write moves it first.
type stallDeadline struct {
	stall int64 // ns; 0: none
	dl    int64 // the deadline set, a monoNow reading; 0: none known
}

// arm moves the deadline on through set before a write, capped at capAt
// (a monoNow reading; 0: none), unless the one set is recent enough. dl
// is a monoNow reading too.
func (d *stallDeadline) arm(capAt int64, set func(time.Time) error) {
	want := monoNow() + d.stall
	if capAt != 0 && capAt < want {
		want = capAt
	}
	if d.dl != 0 && want-d.dl <= d.stall>>4 {
		return
	}
	if set(monoTime(want)) == nil {
		d.dl = want
	}
}

// stallStep is the most written under one move of a stall deadline.
const stallStep = 64 << 10

// writeSteps writes p by write in pieces of at most step bytes (one call
// for an empty p): a write deadline bounds a whole write, so one large p
// read slowly but steadily would look stalled, where each piece under a
// deadline of its own does not.
func writeSteps(p []byte, step int, write func([]byte) (int, error)) (int, error) {
	var total int
	for {
		chunk := p[:min(len(p), step)]
		n, err := write(chunk)
		total += n
		p = p[len(chunk):]
		if err != nil || len(p) == 0 {
			return total, err
		}
	}
}

// WriteStallHandler gives h's ResponseWriters such a deadline: a response
// whose client gives no progress (HTTP/3: no flow-control credit while
// the connection stays alive) for stall ends, as nginx's send_timeout
// ends it; and their requests' bodies one (readStall): a body that gets
// no data for stall, while nothing is written either, ends with a
// timeout (408), as nginx's client_body_timeout ends it. For servers whose ResponseWriter's SetWriteDeadline has
// net.Conn's meaning (quic-go's http3); stall <= 0 returns h.
func WriteStallHandler(h http.Handler, stall time.Duration) http.Handler {
	if stall <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ww := newStallWriter(w, stall)
		if r.Body != nil && r.Body != http.NoBody {
			sw.rs = &readStall{d: stallDeadline{stall: int64(stall)}, w: w}
			r.Body = &stallBody{ReadCloser: r.Body, rs: sw.rs}
		}
		h.ServeHTTP(ww, r)
		// quic-go writes what is still buffered and the trailers after
		// the handler returns: with a deadline from before a pause they
		// would fail (a gRPC stream's grpc-status lost).
		sw.arm()
	})
}

type stallWriter struct {
	http.ResponseWriter
	d     stallDeadline
	fixed bool       // the handler set its own deadline, or took the stream
	rs    *readStall // the request body's; nil without one
}

// readStall is the request body's stall deadline: moved on before each
// Read and, so that it measures time with nothing moving either way (a
// client that only listens to a streaming answer is not stalled), before
// each write too. Reads and writes may come from two goroutines: mu.
// Without it a client could hold a stream, its handler and a backend
// request for as long as it kept the connection alive, having sent one
// byte of a body (integration TestHostileH3BodyStall).
type readStall struct {
	mu  sync.Mutex
	d   stallDeadline
	w   http.ResponseWriter // quic-go's, whose read deadline is the stream's
	off bool                // the handler took the stream
}

func (r *readStall) arm() {
	r.mu.Lock()
	if !r.off {
		r.d.arm(0, http.NewResponseController(r.w).SetReadDeadline)
	}
	r.mu.Unlock()
}

// stallBody is a request body whose Reads arm its readStall.
type stallBody struct {
	io.ReadCloser
	rs *readStall
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.rs.arm()
	return b.ReadCloser.Read(p)
}

// stallWriter with the optional interfaces of each Kind (quic-go's is
// KindH3).
type (
	stallWriterNotify struct {
		stallWriter
		middleware.NotifyExtra
	}
	stallWriterH2 struct {
		stallWriter
		middleware.H2Extra
	}
	stallWriterH3 struct {
		stallWriter
		middleware.H3Extra
	}
)

// newStallWriter wraps w: the wrapper, and the writer to hand down, which
// has w's optional interfaces.
func newStallWriter(w http.ResponseWriter, stall time.Duration) (*stallWriter, http.ResponseWriter) {
	sw := stallWriter{ResponseWriter: w, d: stallDeadline{stall: int64(stall)}}
	switch middleware.KindOf(w) {
	case middleware.KindNotify:
		v := &stallWriterNotify{sw, middleware.NotifyExtra{In: w}}
		return &v.stallWriter, v
	case middleware.KindH2:
		v := &stallWriterH2{sw, middleware.H2Extra{In: w}}
		return &v.stallWriter, v
	case middleware.KindH3:
		v := &stallWriterH3{stallWriter: sw}
		v.H3Extra = middleware.H3Extra{In: w, Owner: &v.stallWriter}
		return &v.stallWriter, v
	}
	v := &sw
	return v, v
}

// TakeStream hands the HTTP/3 stream to the handler (extended CONNECT),
// without the stall deadline: what the stream carries now, and for how
// long, is the handler's business.
func (w *stallWriter) TakeStream(in http3.HTTPStreamer) (*http3.Stream, error) {
	s, err := in.HTTPStream()
	if err == nil {
		w.fixed = true
		if w.d.dl != 0 {
			s.SetWriteDeadline(time.Time{})
		}
		if w.rs != nil {
			w.rs.mu.Lock()
			w.rs.off = true
			if w.rs.d.dl != 0 {
				s.SetReadDeadline(time.Time{})
			}
			w.rs.mu.Unlock()
		}
	}
	return s, err
}

// arm moves the stall deadline on before a write to the stream.
func (w *stallWriter) arm() {
	if !w.fixed {
		w.d.arm(0, http.NewResponseController(w.ResponseWriter).SetWriteDeadline)
		if w.rs != nil {
			w.rs.arm()
		}
	}
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if w.fixed {
		return w.ResponseWriter.Write(p)
	}
	return writeSteps(p, stallStep, w.writeStep)
}

func (w *stallWriter) writeStep(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError writes too (the header, after a pause), and hands on
// quic-go's error, which http.ResponseController would lose to Flush.
func (w *stallWriter) FlushError() error {
	w.arm()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush keeps http.Flusher for handlers that assert it.
func (w *stallWriter) Flush() { w.FlushError() }

// SetWriteDeadline serves http.ResponseController: the handler's own
// deadline replaces the stall deadline.
func (w *stallWriter) SetWriteDeadline(t time.Time) error {
	w.fixed = true
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

// Unwrap serves http.ResponseController for everything else.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
