package l4

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPServer accepts connections on one TCP listener and hands each to
// Handler. It has net/http.Server's shape: Serve, Shutdown, Close.
type TCPServer struct {
	// Entrypoint names the server in logs and on each Conn.
	Entrypoint string
	Handler    Handler
	// ProxyProtocol, when set, requires a PROXY header from trusted peers
	// and refuses one from everybody else.
	ProxyProtocol *ProxyProtocolIn
	// MaxConnections caps open connections; further ones are closed at once.
	// 0 means no cap.
	MaxConnections int
	Logger         *slog.Logger
	// Metrics, when set, counts connections (see Metrics.Entrypoint).
	Metrics *EntrypointMetrics

	rejected atomic.Uint64
	active   atomic.Int64
	live     atomic.Pointer[TCPLive] // set by Update; overrides the fields above

	mu       sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc
	ln       net.Listener
	conns    map[*Conn]struct{}
	wg       sync.WaitGroup
	shutdown bool
	idle     chan struct{} // closed when conns drains to zero during Shutdown
	quit     chan struct{} // closed by Shutdown and Close: ends an accept backoff
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("l4: server closed")

// Active is the number of connections being served now.
func (s *TCPServer) Active() int64 { return s.active.Load() }

// Rejected counts connections closed at once because MaxConnections was
// reached or their PROXY header was missing or refused.
func (s *TCPServer) Rejected() uint64 { return s.rejected.Load() }

func (s *TCPServer) init() {
	if s.conns == nil {
		s.conns = make(map[*Conn]struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.quit = make(chan struct{})
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
	}
}

// Serve accepts connections on ln until Shutdown or Close. It always
// returns a non-nil error: ErrServerClosed after Shutdown or Close.
func (s *TCPServer) Serve(ln *net.TCPListener) error {
	s.mu.Lock()
	s.init()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	quit := s.quit
	s.mu.Unlock()

	var backoff time.Duration
	for {
		tc, err := acceptTCP(ln)
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			// Like net/http: running out of file descriptors is temporary;
			// back off instead of spinning or giving up.
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				backoff = retryDelay(backoff, acceptBackoffMin, acceptBackoffMax)
				s.Logger.Error("accept failed; retrying", "entrypoint", s.Entrypoint, "error", err, "retry_in", backoff)
				if !waitOrQuit(backoff, quit) {
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		s.accept(tc)
	}
}

// acceptTCP and the backoff bounds are vars for the tests.
var (
	acceptTCP                          = (*net.TCPListener).AcceptTCP
	acceptBackoffMin, acceptBackoffMax = 5 * time.Millisecond, time.Second
)

// stopAccepting ends Serve's accept backoff; s.mu is held.
func (s *TCPServer) stopAccepting() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

func (s *TCPServer) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

func (s *TCPServer) accept(tc *net.TCPConn) {
	h, pp, maxConns := s.current()
	if maxConns > 0 && s.active.Load() >= int64(maxConns) {
		s.rejected.Add(1)
		s.Metrics.rejectMax()
		s.Logger.Debug("connection refused: max_connections reached",
			"entrypoint", s.Entrypoint, "client", tc.RemoteAddr(), "max_connections", maxConns)
		_ = tc.SetLinger(0)
		tc.Close()
		return
	}
	c := &Conn{
		TCPConn:    tc,
		Entrypoint: s.Entrypoint,
		Client:     addrPort(tc.RemoteAddr()),
		Dest:       addrPort(tc.LocalAddr()),
		done:       make(chan struct{}),
		metrics:    s.Metrics,
		srv:        s,
		raw:        NewRawIO(tc),
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		tc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.active.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	s.Metrics.accept()
	go s.serve(c, h, pp)
}

func (s *TCPServer) serve(c *Conn, h Handler, pp *ProxyProtocolIn) {
	defer func() {
		if c.state.Load()&connDetached == 0 {
			c.release()
		}
	}()
	if pp != nil {
		if pp.trusts(c.Client.Addr()) {
			err := pp.readProxyHeader(c)
			s.Metrics.proxyHeader(err == nil)
			if err != nil {
				s.rejected.Add(1)
				s.Logger.Warn("connection refused: bad PROXY header",
					"entrypoint", s.Entrypoint, "peer", c.TCPConn.RemoteAddr(), "error", err)
				c.Close()
				return
			}
		} else {
			c.refuseProxyHeader = true
		}
	}
	h.ServeTCP(s.ctx, c)
}

func (s *TCPServer) done(c *Conn) {
	s.Metrics.closed()
	s.mu.Lock()
	delete(s.conns, c)
	if s.active.Add(-1) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, waits for open connections to end by themselves
// until ctx is done, then closes those left. It returns once every goroutine
// the server started has ended; the error is ctx's if connections had to be
// cut.
func (s *TCPServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.shutdown = true
	s.stopAccepting()
	if s.ln != nil {
		s.ln.Close()
	}
	var idle chan struct{}
	if s.active.Load() > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	s.mu.Unlock()
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
			s.closeConns()
		}
	}
	s.wg.Wait()
	return err
}

// Close stops accepting and closes every open connection at once.
func (s *TCPServer) Close() error {
	s.mu.Lock()
	s.init()
	s.shutdown = true
	s.stopAccepting()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.mu.Unlock()
	s.closeConns()
	s.wg.Wait()
	return err
}

func (s *TCPServer) closeConns() {
	s.cancel()
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Unlocked: closing a detached Conn takes it off the books (done).
	for _, c := range conns {
		c.Close()
	}
}
