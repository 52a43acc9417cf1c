package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/l7"
	"github.com/proxynow/proxynow/upstream"
)

// Server runs one configuration at a time and switches to another on
// Reload without closing the sockets both have.
type Server struct {
	log *slog.Logger

	// mu serialises Start, Reload, Shutdown and Close, and guards the
	// fields below. Request paths never take it: they read the atomic
	// pointers of the listeners.
	mu        sync.Mutex
	gen       *generation
	listeners map[listenerKey]*listener
	started   bool
	closed    bool
	// cur is gen for readers that must not wait for a reload (admin).
	cur atomic.Pointer[generation]

	serveWG  sync.WaitGroup // Serve loops
	retireWG sync.WaitGroup // generations being retired
	// stopRetire cuts retirements short (Shutdown after its deadline, Close).
	stopCtx    context.Context
	stopRetire context.CancelFunc

	ops // metrics, access log, admin endpoint (metrics.go, admin.go)
}

// certPoll is how often certificate files are checked for changes.
const certPoll = 2 * time.Second

// clientKeepAlive is the TCP keep-alive toward clients.
var clientKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4}

// New compiles cfg into servers and pools and loads certificates; it binds
// nothing. Errors are about files the configuration names (they loaded when
// it was validated, but may have changed since).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	return NewWithOptions(cfg, Options{Logger: log})
}

// NewWithOptions is New with the parts that outlive a configuration.
func NewWithOptions(cfg *config.Config, o Options) (_ *Server, err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, listeners: map[listenerKey]*listener{}}
	s.stopCtx, s.stopRetire = context.WithCancel(context.Background())
	if err := s.initOps(cfg, o); err != nil {
		return nil, err
	}
	g, err := compile(s, cfg, emptyGeneration(), nil)
	if err != nil {
		_ = s.stopOps(context.Background())
		return nil, err
	}
	s.gen = g
	s.cur.Store(g)
	return s, nil
}

// Start binds every entrypoint and starts serving. If one cannot be bound,
// the ones already bound are closed and the error names the entrypoint.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("server: Start called twice or after Shutdown")
	}
	if err := s.bind(s.gen); err != nil {
		release(s.gen, emptyGeneration())
		return err
	}
	s.started = true
	s.swap(s.gen)
	for _, p := range s.gen.eps {
		s.log.Info("listening", "entrypoint", p.cfg.Name, "network", p.ln.network(), "address", p.ln.addr.String())
	}
	if err := s.startAdmin(); err != nil {
		s.closed = true
		for _, l := range s.listeners {
			l.close()
		}
		s.serveWG.Wait()
		release(s.gen, emptyGeneration())
		_ = s.stopOps(context.Background())
		return err
	}
	return nil
}

// bind opens the sockets of g's listeners that are not open yet; on error
// it closes those it opened.
func (s *Server) bind(g *generation) error {
	var bound []*listener
	var quics []*quicSide
	undo := func() {
		for _, q := range quics {
			q.unbind()
		}
		for _, l := range bound {
			l.unbind()
		}
	}
	for _, p := range g.eps {
		fresh := p.ln.addr == nil
		for try := 0; ; try++ {
			if p.ln.addr == nil {
				if err := p.ln.bind(); err != nil {
					undo()
					return fmt.Errorf("entrypoint %q: %w", p.cfg.Name, err)
				}
			}
			if p.quic == nil || p.quic.pc != nil {
				break
			}
			err := p.ln.bindQUIC(p, s)
			if err == nil {
				quics = append(quics, p.quic)
				break
			}
			// Port 0: the kernel picked a TCP port whose UDP twin is taken;
			// pick another pair rather than fail.
			if fresh && p.key.name != "" && errors.Is(err, syscall.EADDRINUSE) && try < 20 {
				p.ln.unbind()
				p.ln.addr = nil
				continue
			}
			if fresh {
				p.ln.unbind()
			}
			undo()
			return fmt.Errorf("entrypoint %q: %w", p.cfg.Name, err)
		}
		if fresh {
			bound = append(bound, p.ln)
		}
	}
	return nil
}

// swap publishes g: every listener gets g's settings and handlers in one
// atomic store each, new listeners start serving, background work of new
// pools and certificates starts. It returns the listeners and HTTP
// servers that g no longer uses. s.mu must be held.
func (s *Server) swap(g *generation) (removed []*listener, replaced []*httpServer, quics []*quicSide) {
	next := make(map[listenerKey]*listener, len(g.eps))
	for _, p := range g.eps {
		l := p.ln
		l.name.Store(&p.cfg.Name)
		if l.udp != nil {
			l.udp.Update(p.udp)
		} else {
			if q := p.quic; q != nil {
				q.handler.store(l7.HTTP3(p.http, p.cfg.Timeouts.ReadHeader))
				if q.demux != nil && q.started {
					// Validated when the routes were compiled at bind.
					if err := q.demux.SetRoutes(p.quicRoutes); err != nil {
						s.log.Error("quic_routes not applied", "entrypoint", p.cfg.Name, "error", err)
					}
				}
				if !q.started {
					q.serve(s, l)
				}
			}
			if old := l.quic; old != nil && old != p.quic {
				quics = append(quics, old)
			}
			l.quic = p.quic
			var h http.Handler
			if p.hs != nil {
				h = p.http
				if p.quic != nil {
					h = p.quic.wrap(h) // Alt-Svc: HTTP/3 listens
				}
				p.hs.handler.store(h)
				if !p.hs.started {
					p.hs.serve(s, l)
				}
			}
			if old := l.http.Swap(p.hs); old != nil && old != p.hs {
				// Replaced (other settings): until its keep-alive
				// connections close, their next requests see the new
				// routes too.
				if h != nil {
					old.handler.store(h)
				}
				replaced = append(replaced, old)
			}
			l.tcp.Update(p.tcp)
		}
		if _, serving := s.listeners[p.key]; !serving {
			l.serve(s)
		}
		next[p.key] = l
	}
	for k, l := range s.listeners {
		if next[k] == nil {
			removed = append(removed, l)
		}
	}
	s.listeners, s.gen = next, g
	s.cur.Store(g)
	s.publish(g)
	for _, e := range g.services {
		if e.pool != nil {
			e.pool.StartHealthChecks()
		}
	}
	if g.certs != nil {
		g.certs.Watch(certPoll)
	}
	g.startACME()
	return removed, replaced, quics
}

func (s *Server) goServe(name func() string, serve func() error) {
	s.serveWG.Go(func() {
		if err := serve(); err != nil && !errors.Is(err, l4.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("entrypoint stopped", "entrypoint", name(), "error", err)
		}
	})
}

// Addr returns the bound address of the named entrypoint, or nil.
func (s *Server) Addr(entrypoint string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.gen.eps {
		if p.cfg.Name == entrypoint {
			return p.ln.addr
		}
	}
	return nil
}

// Pool returns the backend pool of the named service, or nil.
func (s *Server) Pool(service string) *upstream.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.gen.services[service]; e != nil {
		return e.pool
	}
	return nil
}

// Config is the configuration being served.
func (s *Server) Config() *config.Config { return s.cur.Load().cfg }

// Shutdown stops accepting on every entrypoint at once and waits for open
// connections and flows (and those of generations still being retired
// after a reload) until ctx is done; those left are then closed. It
// returns when every goroutine the server started has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	s.closed = true
	ls, g := s.listeners, s.gen
	s.listeners = map[listenerKey]*listener{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, s.stopRetire)
	defer stop()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			if err := l.shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("entrypoint %q: %w", l.entrypoint(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.retireWG.Wait()
	s.serveWG.Wait()
	s.stopRetire()
	release(g, emptyGeneration())
	return errors.Join(append(errs, s.stopOps(ctx))...)
}

// Close closes every listener, connection and flow at once.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.mu.Lock()
	s.closed = true
	ls, g := s.listeners, s.gen
	s.listeners = map[listenerKey]*listener{}
	s.mu.Unlock()
	s.stopRetire()
	for _, l := range ls {
		l.close()
	}
	s.retireWG.Wait()
	s.serveWG.Wait()
	release(g, emptyGeneration())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.stopOps(ctx)
}
