package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/upstream"
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
	bc, err := p.Pool.Dial(ctx, "tcp")
	if err != nil {
		log.Error("connection closed: no backend", "entrypoint", c.Entrypoint, "route", p.Route,
			"client", c.Client, "error", err)
		c.Close()
		return
	}
	defer bc.Release()
	backend := bc.Conn.(*net.TCPConn)

	var head []byte
	if p.ProxyProtocol != "" {
		if head, err = proxyHeader(p.ProxyProtocol, c.Client, c.Dest); err != nil {
			log.Error("PROXY header", "error", err)
			c.Close()
			backend.Close()
			return
		}
	}
	t := &tunnel{client: c, backend: backend, idle: p.Idle, head: head}
	up, down, err := t.run()
	lvl := slog.LevelDebug
	if err != nil && !errors.Is(err, net.ErrClosed) {
		lvl = slog.LevelInfo
	}
	log.Log(ctx, lvl, "connection closed", "entrypoint", c.Entrypoint, "route", p.Route,
		"client", c.Client, "backend", bc.Backend.Addr, "bytes_up", up, "bytes_down", down,
		"duration", time.Since(start), "error", err)
}

// errIdle ends a tunnel on which nothing moved for the idle timeout.
var errIdle = errors.New("idle timeout")

// tunnel moves bytes between a client and a backend socket.
type tunnel struct {
	client  *Conn
	backend *net.TCPConn
	idle    time.Duration
	head    []byte // PROXY header, written before the client's bytes

	last atomic.Int64 // unix nanoseconds of the last progress either way
}

// run pumps both directions and closes both sockets. A clean EOF in one
// direction half-closes the other side (CloseWrite) so protocols that shut
// down one direction keep working; any error tears down both.
func (t *tunnel) run() (up, down int64, err error) {
	t.last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	var downErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		down, downErr = t.pump(t.client.TCPConn, t.backend)
		t.finish(t.client.TCPConn, t.backend, downErr)
	}()
	up, err = t.upstream()
	t.finish(t.backend, t.client.TCPConn, err)
	wg.Wait()
	t.client.TCPConn.Close()
	t.backend.Close()
	return up, down, errors.Join(err, downErr)
}

// finish ends one direction: a half-close after a clean EOF, a full
// teardown after an error (which also unblocks the other direction).
func (t *tunnel) finish(dst, src *net.TCPConn, err error) {
	if err == nil {
		_ = dst.CloseWrite()
		return
	}
	// Reset rather than FIN so the peers see the failure, as HAProxy does.
	_ = dst.SetLinger(0)
	_ = src.SetLinger(0)
	dst.Close()
	src.Close()
}

// upstream moves the client's bytes to the backend: the PROXY header and
// any bytes read early first (one write), then the raw sockets.
func (t *tunnel) upstream() (int64, error) {
	c := t.client
	if err := c.checkNoProxyHeader(); err != nil {
		return 0, err
	}
	var n int64
	if first := append(t.head, c.Prefix...); len(first) > 0 {
		c.Prefix = nil
		if t.idle > 0 {
			_ = t.backend.SetWriteDeadline(time.Now().Add(t.idle))
		}
		w, err := t.backend.Write(first)
		n = int64(w - len(t.head))
		if err != nil {
			return max(n, 0), err
		}
		t.last.Store(time.Now().UnixNano())
	}
	m, err := t.pump(t.backend, c.TCPConn)
	return n + m, err
}

// pump copies src to dst until EOF (nil error) or an error. The copy is
// (*net.TCPConn).ReadFrom on the raw sockets, which splices on Linux.
//
// The idle timeout is kept without wrapping the sockets (a wrapper would
// defeat splice): the read deadline is set a quarter of the timeout ahead,
// and when it fires the copy returns with what it moved; the pair is idle
// only if neither direction moved anything for the whole timeout. A write
// stalled for the whole timeout (a peer that stopped reading) also ends it.
func (t *tunnel) pump(dst, src *net.TCPConn) (int64, error) {
	if t.idle <= 0 {
		return dst.ReadFrom(src)
	}
	var total int64
	check := max(t.idle/4, 10*time.Millisecond)
	for {
		began := time.Now()
		_ = src.SetReadDeadline(began.Add(check))
		_ = dst.SetWriteDeadline(began.Add(t.idle))
		n, err := dst.ReadFrom(src)
		total += n
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
		if now.Sub(began) >= t.idle || now.Sub(time.Unix(0, t.last.Load())) >= t.idle {
			return total, errIdle
		}
	}
}
