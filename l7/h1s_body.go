package l7

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1body is a request body of the h1 server: Content-Length bytes or a
// chunked body (httputil's decoder over the connection's reader, then the
// trailer section into Request.Trailer), with "100 Continue" sent before
// the first read when the client asked for it. Reads may come from another
// goroutine than the handler's (net/http's Transport writes a proxied body
// from its own); after the handler returns they fail.
type h1body struct {
	c   *h1conn
	req *http.Request

	mu      sync.Mutex
	remain  int64 // Content-Length bytes still to read
	chunked bool
	cr      io.Reader // the chunked decoder, made on first read
	expect  bool      // the client waits for 100 Continue
	// owed is expect until the first read: read without mu by the writer.
	owed    atomic.Bool
	started bool // a read happened (100 Continue is sent, if asked)
	eof     bool
	err     error // sticky read error
	closed  bool  // the handler returned, or called Close
	watch   bool  // start the client watch at EOF (the handler runs)
	timed   bool  // a read set the idle deadline
}

var errBodyTooLong = errors.New("request body left unread is too large")

func (b *h1body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.read(p)
	if err == io.EOF && b.watch {
		b.watch = false
		b.c.startWatch()
	}
	return n, err
}

// read is Read without the closed check; b.mu is held.
func (b *h1body) read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if !b.started {
		b.started = true
		if b.expect {
			b.c.w.sendContinue()
			b.owed.Store(false)
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	// A read that starts on buffered bytes needs no deadline when it
	// returns them alone (Content-Length); the chunked decoder may go on
	// to the socket in the same read (after a chunk's buffered part, for
	// its rest or the next chunk-size line), so its reads always set one.
	sock := b.chunked || b.c.br.Buffered() == 0
	switch d := b.c.s.idleTimeout; {
	case b.c.rdUser:
		// The handler's deadline (ResponseController) is on the socket.
	case d > 0 && sock:
		// timeouts.idle: a body that stops arriving for that long ends
		// (nginx: client_body_timeout); the deadline is cleared at its end.
		b.c.nc.SetReadDeadline(time.Now().Add(d))
		b.timed = true
		b.c.rdStale = false
	case b.c.rdStale && sock:
		b.c.nc.SetReadDeadline(time.Time{})
		b.c.rdStale = false
	}
	var n int
	var err error
	if b.chunked {
		if b.cr == nil {
			b.cr = httputil.NewChunkedReader(b.c.br)
		}
		n, err = b.cr.Read(p)
		if err == io.EOF {
			err = b.readTrailer()
		}
	} else {
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.c.br.Read(p)
		b.remain -= int64(n)
		switch {
		case b.remain == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		b.eof = true
		if b.timed && !b.c.rdUser {
			b.c.nc.SetReadDeadline(time.Time{})
		}
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// readTrailer reads the trailer section after the last chunk into
// Request.Trailer; io.EOF when it ends well. The guard checked its syntax.
func (b *h1body) readTrailer() error {
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if total += len(line); total > b.c.s.maxHead {
			return errors.New("request trailer too large")
		}
		if len(line) == 2 {
			return io.EOF
		}
		name, value, ok := strings.Cut(string(line[:len(line)-2]), ":")
		if !ok {
			return errors.New("malformed trailer line")
		}
		if b.req.Trailer == nil {
			b.req.Trailer = make(http.Header)
		}
		key := reqKey(name)
		b.req.Trailer[key] = append(b.req.Trailer[key], strings.Trim(value, " \t"))
	}
}

func (b *h1body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// done reports whether nothing is left to read.
func (b *h1body) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// endsConn reports, once the handler returned, whether the connection
// cannot carry another request: more unread body than the server would
// discard, or a client still waiting for a 100 Continue (it may or may
// not send its body now).
func (b *h1body) endsConn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return false
	}
	return b.err != nil && b.chunked || b.expect && !b.started || !b.chunked && b.remain > h1sMaxDiscard
}

// failed reports a body that broke (the connection ends after the
// response).
func (b *h1body) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// handlerDone closes the body to the handler's readers.
func (b *h1body) handlerDone() {
	b.mu.Lock()
	b.closed = true
	b.watch = false
	b.mu.Unlock()
}

// discard reads what the handler left of the body, up to h1sMaxDiscard,
// so the connection can carry the next request; false if it cannot.
func (b *h1body) discard() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return false
	}
	c := b.c
	if d := max(c.s.idleTimeout, c.s.readHeaderTimeout); d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	buf := make([]byte, 4096)
	for total := 0; total <= h1sMaxDiscard; {
		n, err := b.read(buf)
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	b.err = errBodyTooLong
	return false
}
