package l4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/upstream"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// Proxy is the Handler that pipes a connection to a backend of Pool.
type Proxy struct {
	Route string
	Pool  *upstream.Pool
	// ProxyProtocol is "", "v1" or "v2": the header sent to the backend.
	ProxyProtocol string
	// Idle closes the pair when no byte moved either way for this long;
	// 0 means never.
	Idle   time.Duration
	Logger *slog.Logger
	// Service names the route's service in the access log. Metrics, when
	// set, counts each connection; AccessLog, when it holds a Writer, logs
	// it (the Writer in use when the connection ends).
	Service   string
	Metrics   *RouteMetrics
	AccessLog *accesslog.Switch
}

var _ Handler = (*Proxy)(nil)

// ServeTCP dials a backend and moves bytes both ways until both sides are
// done, an error occurs, or the pair is idle for p.Idle.
func (p *Proxy) ServeTCP(ctx context.Context, c *Conn) {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	p.Metrics.start()
	bc, err := p.Pool.Dial(ctx, "tcp")
	if err != nil {
		p.observe(ctx, c, start, "", 0, 0, errNoBackend)
		log.Error("connection closed: no backend", "entrypoint", c.Entrypoint, "route", p.Route,
			"client", c.Client, "error", err)
		c.Close()
		return
	}
	defer bc.Release()
	backend := bc.Conn

	var head []byte
	if p.ProxyProtocol != "" {
		if head, err = proxyHeader(p.ProxyProtocol, c.Client, c.Dest); err != nil {
			log.Error("PROXY header", "error", err)
			c.stream().Close()
			backend.Close()
			return
		}
	}
	t := &tunnel{client: c, backend: backend, idle: p.Idle, head: head, m: p.Metrics}
	up, down, err := t.run()
	p.observe(ctx, c, start, bc.Backend.Addr, up, down, err)
	lvl := slog.LevelDebug
	if err != nil && !errors.Is(err, net.ErrClosed) {
		lvl = slog.LevelInfo
	}
	log.Log(ctx, lvl, "connection closed", "entrypoint", c.Entrypoint, "route", p.Route,
		"client", c.Client, "backend", bc.Backend.Addr, "bytes_up", up, "bytes_down", down,
		"duration", time.Since(start), "error", err)
}

// errIdle ends a tunnel on which nothing moved for the idle timeout;
// errStalled one whose write waited that long (a peer that stopped
// reading), which is logged as idle too but reset, not closed.
var (
	errIdle    = errors.New("idle timeout")
	errStalled = fmt.Errorf("write stalled: %w", errIdle)
)

// tunnel moves bytes between a client and a backend.
type tunnel struct {
	client  *Conn
	backend net.Conn
	idle    time.Duration
	head    []byte // PROXY header, written before the client's bytes

	last atomic.Int64  // unix nanoseconds of the last progress either way
	m    *RouteMetrics // counts bytes as they move; nil: not counted
	// idled: the idle timeout ended the pair, so the other direction's
	// error (its socket closed under it) is no failure either.
	idled atomic.Bool
}

// run pumps both directions and closes both sides. A clean EOF in one
// direction half-closes the other side (CloseWrite) so protocols that shut
// down one direction keep working; any error tears down both.
func (t *tunnel) run() (up, down int64, err error) {
	t.last.Store(time.Now().UnixNano())
	// The raw socket, not the Conn wrapper, so that the pumps splice;
	// upstream writes the Conn's Prefix first.
	var client net.Conn = t.client.TCPConn
	if t.client.Stream != nil {
		client = t.client.Stream
	}
	var wg sync.WaitGroup
	var downErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		down, downErr = t.pump(client, t.backend, false)
		t.finish(client, t.backend, downErr)
	}()
	up, err = t.upstream(client)
	t.finish(t.backend, client, err)
	wg.Wait()
	client.Close()
	t.client.Close()
	t.backend.Close()
	return up, down, errors.Join(err, downErr)
}

// closeWriter is a stream that can be half-closed: *net.TCPConn sends a
// FIN, *tls.Conn a close_notify alert.
type closeWriter interface{ CloseWrite() error }

// finish ends one direction: a half-close after a clean EOF, a full
// teardown after an error or the idle timeout (which also unblocks the
// other direction).
func (t *tunnel) finish(dst, src net.Conn, err error) {
	if err == nil {
		if cw, ok := dst.(closeWriter); ok {
			_ = cw.CloseWrite()
			return
		}
	}
	if err == errIdle { // not errStalled: its peer keeps the reset
		t.idled.Store(true)
	}
	if !t.idled.Load() {
		// Reset rather than FIN so the peers see the failure, as HAProxy
		// does. An idle pair is not a failure: both peers get a FIN, as
		// from nginx's proxy_timeout.
		resetOnClose(dst)
		resetOnClose(src)
	}
	dst.Close()
	src.Close()
}

func resetOnClose(c net.Conn) {
	switch c := c.(type) {
	case *net.TCPConn:
		_ = c.SetLinger(0)
	case *Conn:
		_ = c.SetLinger(0)
	}
}

// upstream moves the client's bytes to the backend: the PROXY header and
// any bytes read early first (one write), then the streams.
func (t *tunnel) upstream(client net.Conn) (int64, error) {
	c := t.client
	var first []byte
	if c.Stream == nil {
		// Early bytes belong to the raw stream; under TLS they were the
		// handshake, already consumed.
		if err := c.checkNoProxyHeader(); err != nil {
			return 0, err
		}
		first = append(t.head, c.Prefix...)
		c.Prefix = nil
	} else {
		first = t.head
	}
	var n int64
	if len(first) > 0 {
		if t.idle > 0 {
			_ = t.backend.SetWriteDeadline(time.Now().Add(t.idle))
		}
		w, err := t.backend.Write(first)
		n = int64(w - len(t.head))
		if err != nil {
			t.m.moved(true, n)
			return max(n, 0), err
		}
		t.last.Store(time.Now().UnixNano())
	}
	t.m.moved(true, n)
	m, err := t.pump(t.backend, client, true)
	return n + m, err
}

// copyBufs are the buffers of pumps that cannot splice (TLS on one side).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyOnce copies src to dst until EOF, an error or a deadline. Between two
// raw TCP sockets it is (*net.TCPConn).ReadFrom, which splices on Linux;
// otherwise a pooled buffer (the wrappers hide ReadFrom and WriteTo so no
// other path allocates one).
func copyOnce(dst, src net.Conn) (int64, error) {
	if d, ok := dst.(*net.TCPConn); ok {
		if s, ok := src.(*net.TCPConn); ok {
			return d.ReadFrom(s)
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}

// pump copies src to dst until EOF (nil error) or an error.
//
// The idle timeout is kept without wrapping the sockets (a wrapper would
// defeat splice): the read deadline is set a quarter of the timeout ahead,
// and when it fires the copy returns with what it moved; the pair is idle
// only if neither direction moved anything for the whole timeout. A write
// stalled for the whole timeout (a peer that stopped reading) also ends it.
func (t *tunnel) pump(dst, src net.Conn, up bool) (int64, error) {
	if t.idle <= 0 {
		n, err := copyOnce(dst, src)
		t.m.moved(up, n)
		return n, err
	}
	var total int64
	check := max(t.idle/4, 10*time.Millisecond)
	for {
		began := time.Now()
		_ = src.SetReadDeadline(began.Add(check))
		_ = dst.SetWriteDeadline(began.Add(t.idle))
		n, err := copyOnce(dst, src)
		total += n
		t.m.moved(up, n) // long connections report as they go, each idle check
		now := time.Now()
		if n > 0 {
			t.last.Store(now.UnixNano())
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return total, err
		}
		// Only the write deadline is as far as the timeout: a write stalled
		// that long may have left bytes in the splice pipe, so the pair
		// cannot go on whatever the other direction did.
		if now.Sub(began) >= t.idle {
			return total, errStalled
		}
		if now.Sub(time.Unix(0, t.last.Load())) >= t.idle {
			return total, errIdle
		}
	}
}
