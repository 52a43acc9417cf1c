package l7

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is one HTTP/2 server connection: proxynow's own, on x/net's
// Framer and HPACK codec. x/net's server (net/http bundles the same) runs
// a reader goroutine, a serve loop and a goroutine per response head it
// writes, and passes every frame between them over channels: serving
// alone cost it as much CPU per request as nginx's whole proxied request
// (h2-static in integration/bench). Here the serve goroutine reads and
// handles the frames itself, each stream's handler writes its own frames,
// and the batchConn below gathers the writes of the streams that finish
// together into one TLS record and one syscall.
//
// Locks: mu guards the streams, flow control and the connection's state;
// wmu serialises writes (the write Framer and the HPACK encoder, whose
// state follows the order frames are written in) and each stream's
// write side (h2Stream.wdone). mu may be held while taking wmu, never the
// other way round.
type h2Conn struct {
	s      *h2Server
	nc     net.Conn // the batchConn; closing it ends the connection
	raw    net.Conn // as handed over
	br     *bufio.Reader
	remote string
	tls    *tls.ConnectionState
	peer   netip.Addr    // remote, parsed once (h1ctx.peer)
	fr     *http2.Framer // reads: the serve goroutine's own
	// maxFrame is the peer's SETTINGS_MAX_FRAME_SIZE.
	maxFrame atomic.Int32
	resets   h2ResetBudget

	wmu  sync.Mutex
	wfr  *http2.Framer
	henc *hpack.Encoder
	hbuf []byte // the header block being encoded
	werr error  // the first write error: every later write fails with it

	mu            sync.Mutex
	flow          sync.Cond // on mu: send credit came, or a stream or the connection ended
	streams       map[uint32]*h2Stream
	lastID        uint32 // the highest stream the client opened
	handlers      int    // handlers running
	sendWindow    int64  // the connection's, as the peer credits it
	initialWindow int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	recvWindow    int64  // what the peer may still send on the connection
	recvUnsent    int64  // connection credit consumed, not yet returned
	goingAway     bool   // a GOAWAY was sent: no new streams
	closed        bool
	idle          *time.Timer // runs while no stream is open
	idleSince     time.Time   // when the last stream ended
	linger        *time.Timer // closes the connection gone away
}

const (
	// h2RecvWindow is what a stream, and the connection, may have in
	// flight from the client (x/net's default too: 1 MiB each).
	h2RecvWindow = 1 << 20
	// h2UpdateMin: credit goes back once this much was consumed, or once
	// the handler read all that was buffered.
	h2UpdateMin = 32 << 10
	// h2Linger bounds the reading (what arrives is dropped) after a
	// GOAWAY for an error, so that the client reads the GOAWAY before the
	// close resets the connection.
	h2Linger = time.Second
	// h2LingerBytes bounds what is read then: a flood stops being taken.
	h2LingerBytes = 64 << 10
	// h2MaxWindow is the largest flow-control window (RFC 9113 6.9.1).
	h2MaxWindow = 1<<31 - 1
)

func newH2Conn(s *h2Server, raw, bc net.Conn) *h2Conn {
	c := &h2Conn{
		s:             s,
		nc:            bc,
		raw:           raw,
		remote:        raw.RemoteAddr().String(),
		streams:       make(map[uint32]*h2Stream),
		sendWindow:    65535,
		initialWindow: 65535,
		recvWindow:    h2RecvWindow,
	}
	if tc, ok := raw.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.maxFrame.Store(16384)
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		c.peer = ap.Addr().Unmap()
	}
	c.resets.init()
	c.flow.L = &c.mu
	c.br = bufio.NewReaderSize(bc, 16<<10)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(s.maxReadFrame)
	c.fr.MaxHeaderListSize = s.maxHeaderList
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.ReadMetaHeaders.SetMaxStringLength(int(s.maxHeaderList))
	c.wfr = http2.NewFramer(bc, nil)
	c.henc = hpack.NewEncoder((*h2HeaderSink)(c))
	// No dynamic table for responses (newH2Server says why).
	c.henc.SetMaxDynamicTableSizeLimit(1)
	return c
}

// h2HeaderSink is where the HPACK encoder writes: the conn's hbuf.
type h2HeaderSink h2Conn

func (w *h2HeaderSink) Write(p []byte) (int, error) {
	w.hbuf = append(w.hbuf, p...)
	return len(p), nil
}

// serve runs the connection until it ends. preface: the client preface
// was read already.
func (c *h2Conn) serve(preface bool) {
	defer c.teardown()
	c.writeFrames(func() error {
		if err := c.wfr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.s.maxStreams)},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.s.maxReadFrame},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.s.maxHeaderList},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2RecvWindow},
		); err != nil {
			return err
		}
		return c.wfr.WriteWindowUpdate(0, h2RecvWindow-65535)
	})
	if !preface {
		// x/net's wait: the handshake deadline no longer applies.
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var pre [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
			return
		}
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Lock()
	c.idleLocked()
	c.mu.Unlock()
	first := true
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) && !first {
				c.streamError(se.StreamID, se.Code)
				continue
			}
			c.readError(err)
			return
		}
		if first {
			// The client's preface ends with a SETTINGS frame.
			if _, ok := f.(*http2.SettingsFrame); !ok {
				c.connError(http2.ErrCodeProtocol, "first frame not SETTINGS")
				return
			}
			first = false
		}
		if err := c.process(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.connError(http2.ErrCode(ce), "")
			}
			return
		}
	}
}

// readError answers what ReadFrame failed with at the connection level.
func (c *h2Conn) readError(err error) {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		c.connError(http2.ErrCode(ce), "")
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connError(http2.ErrCodeFrameSize, "")
	}
}

// connError ends the connection with a GOAWAY carrying code, then reads
// on for a moment, dropping what arrives, so that the client sees the
// GOAWAY before the close.
func (c *h2Conn) connError(code http2.ErrCode, debug string) {
	c.mu.Lock()
	c.goingAway = true
	last := c.lastID
	c.mu.Unlock()
	c.writeFrames(func() error { return c.wfr.WriteGoAway(last, code, []byte(debug)) })
	c.nc.SetReadDeadline(time.Now().Add(h2Linger))
	io.CopyN(io.Discard, c.br, h2LingerBytes)
}

func (c *h2Conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		data := f.Data
		return c.writeFrames(func() error { return c.wfr.WritePing(true, data) })
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
		return nil
	case *http2.GoAwayFrame:
		// The client opens no more streams: those open finish, then the
		// connection closes.
		c.goAway(http2.ErrCodeNo)
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.ContinuationFrame:
		// ReadMetaHeaders reads a header block's CONTINUATIONs itself.
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil // unknown frame types are ignored (RFC 9113 5.5)
}

func (c *h2Conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	// Repeated settings are applied in order (RFC 9113 6.5.3).
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSize(s.Val)
			c.wmu.Unlock()
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			delta := int64(s.Val) - c.initialWindow
			c.initialWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > h2MaxWindow {
					c.mu.Unlock()
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.flow.Broadcast()
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.maxFrame.Store(int32(s.Val))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.writeFrames(c.wfr.WriteSettingsAck)
}

func (c *h2Conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += inc
		if c.sendWindow > h2MaxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.flow.Broadcast()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		return nil // a closed one
	}
	st.sendWindow += inc
	if st.sendWindow > h2MaxWindow {
		c.resetLocked(st, http2.ErrCodeFlowControl, true)
		return nil
	}
	c.flow.Broadcast()
	return nil
}

func (c *h2Conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		return nil
	}
	c.resetLocked(st, f.ErrCode, false)
	return nil
}

// streamError resets stream id (open or not) with code.
func (c *h2Conn) streamError(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.resetLocked(st, code, true)
		c.mu.Unlock()
		return
	}
	if id > c.lastID && id%2 == 1 {
		c.lastID = id // a stream refused as it opened is closed
	}
	c.mu.Unlock()
	c.writeFrames(func() error { return c.wfr.WriteRSTStream(id, code) })
}

// goAway sends a GOAWAY (once) and closes the connection as soon as no
// stream is open: the streams up to the last one opened are served.
func (c *h2Conn) goAway(code http2.ErrCode) {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	last := c.lastID
	c.mu.Unlock()
	c.writeFrames(func() error { return c.wfr.WriteGoAway(last, code, nil) })
	c.mu.Lock()
	c.closeIfDoneLocked()
	c.mu.Unlock()
}

// closeIfDoneLocked closes the connection once it is going away and no
// stream or handler is left; the serve loop's read then fails.
func (c *h2Conn) closeIfDoneLocked() {
	if c.goingAway && len(c.streams) == 0 && c.handlers == 0 && !c.closed {
		c.closed = true
		// Not at once: the client may have sent frames (new streams)
		// before it read the GOAWAY, and closing with them unread resets
		// the connection, which can destroy the GOAWAY before the client
		// reads it; the client then cannot tell that its requests are safe
		// to retry. It closes the connection itself once its own streams
		// are done; h2Linger bounds the wait (x/net's goAwayTimeout). The
		// Close flushes what is pending first.
		c.linger = time.AfterFunc(h2Linger, func() { c.nc.Close() })
	}
}

// idleLocked starts the idle timer once no stream is open: a connection
// with none for timeouts.idle gets a GOAWAY and is closed.
func (c *h2Conn) idleLocked() {
	if c.s.idleTimeout <= 0 || c.closed {
		return
	}
	c.idleSince = time.Now()
	if c.idle == nil {
		c.idle = time.AfterFunc(c.s.idleTimeout, c.idleFired)
	} else {
		c.idle.Reset(c.s.idleTimeout)
	}
}

func (c *h2Conn) idleFired() {
	c.mu.Lock()
	if len(c.streams) != 0 || c.handlers != 0 || c.closed {
		c.mu.Unlock()
		return // a stream opened; its end starts the timer again
	}
	if left := c.s.idleTimeout - time.Since(c.idleSince); left > 0 {
		c.idle.Reset(left)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.goAway(http2.ErrCodeNo)
}

// teardown ends what the connection still runs: every stream's context
// is cancelled and waiting writers and readers fail; then it waits for
// the handlers to return.
func (c *h2Conn) teardown() {
	c.nc.Close()
	c.mu.Lock()
	c.closed = true
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.linger != nil {
		c.linger.Stop()
	}
	for _, st := range c.streams {
		c.endLocked(st, errH2ConnClosed)
	}
	c.flow.Broadcast()
	for c.handlers > 0 {
		c.flow.Wait()
	}
	c.mu.Unlock()
}

var errH2ConnClosed = errors.New("http2: client connection closed")
