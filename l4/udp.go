package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxynow/proxynow/upstream"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// UDPServer relays datagrams between clients and the backends of Pool. Each
// client address is a flow with its own connected socket toward the backend
// chosen when the flow began; replies go back from the listening socket.
type UDPServer struct {
	Entrypoint string
	Route      string
	Pool       *upstream.Pool
	// ProxyProtocol prefixes every datagram toward the backend with a PROXY
	// v2 header (the header and the payload share one datagram).
	ProxyProtocol bool
	// IdleTimeout ends a flow with no datagram either way; 0 means 30s.
	IdleTimeout time.Duration
	// MaxFlows caps the flow table; datagrams that would open another flow
	// are dropped. 0 means no cap.
	MaxFlows int
	Logger   *slog.Logger
	// Service names the route's service in the access log. Metrics, when
	// set, counts datagrams and flows; AccessLog, when it holds a Writer,
	// logs each flow (the Writer in use when the flow ends).
	Service   string
	Metrics   *UDPMetrics
	AccessLog *accesslog.Switch

	dropped atomic.Uint64
	live    atomic.Pointer[UDPMetrics] // Metrics, for readers that do not hold mu
	updated atomic.Bool                // live is in force (Update was called)

	mu       sync.RWMutex
	pc       *net.UDPConn
	out      *dgramWriter // pc's batch writes, set before the first flow
	flows    map[netip.AddrPort]*flow
	shutdown bool
	drained  chan struct{} // closed when flows drains to zero during Shutdown
	quit     chan struct{} // closed by Close: Serve's read backoff ends at once
	wg       sync.WaitGroup
}

// flow is one client's conversation with one backend.
type flow struct {
	client  netip.AddrPort // as received, the key in the table
	pool    *upstream.Pool // the pool backend came from (a reload may change s.Pool)
	route   string         // the route, service and metrics it was opened with
	service string
	metrics *UDPMetrics
	backend *upstream.Conn
	conn    *net.UDPConn
	out     *dgramWriter // conn's batch writes
	addr    *net.UDPAddr // client, made once for the replies' writes
	head    []byte       // PROXY v2 header for this flow, or nil
	last    atomic.Int64 // unix nanoseconds of the last datagram either way
	stats   flowStats    // for the access log
}

// maxDatagram is the largest UDP payload (65535 less the 8-byte header);
// headRoom leaves space in front of it for a PROXY v2 header (at most 52
// bytes for IPv6) so the header and payload go out in one write, unmoved.
const (
	socketBuffer = 4 << 20
	maxDatagram  = 65535 - 8
	headRoom     = 64
)

// Dropped counts datagrams dropped: flow table full, no backend, or a
// failed write toward a backend.
func (s *UDPServer) Dropped() uint64 { return s.dropped.Load() }

// Flows is the number of open flows.
func (s *UDPServer) Flows() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.flows)
}

// drainIdle is the idle timeout of flows once Shutdown has begun: UDP has
// no close, so a flow that has been quiet this long is taken as finished
// (a DNS flow is done after its answer) rather than held for the full idle
// timeout.
const drainIdle = time.Second

func (s *UDPServer) idle() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idleLocked()
}

func (s *UDPServer) idleLocked() time.Duration {
	d := s.IdleTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	if s.shutdown {
		d = min(d, drainIdle)
	}
	return d
}

// Serve relays datagrams received on pc until Shutdown or Close, and
// returns ErrServerClosed then.
func (s *UDPServer) Serve(pc *net.UDPConn) error {
	s.mu.Lock()
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.shutdown {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	s.pc = pc
	s.flows = make(map[netip.AddrPort]*flow)
	quit := make(chan struct{})
	s.quit = quit
	s.mu.Unlock()
	// One socket takes every client's datagrams: the kernel's default
	// receive buffer (~208 KiB) overflows under bursts from many clients.
	// The kernel caps these at net.core.rmem_max / wmem_max.
	_ = pc.SetReadBuffer(socketBuffer)
	_ = pc.SetWriteBuffer(socketBuffer)

	rc, err := pc.SyscallConn()
	if err != nil {
		return fmt.Errorf("udp listener: %w", err)
	}
	s.out = newDgramWriter(pc)
	// The listener's loop keeps one batch: it is always reading.
	b := newBatch()
	var rerr error
	read := func(fd uintptr) bool {
		rerr = listenerRecv(fd, b)
		return rerr != syscall.EAGAIN
	}
	var delay time.Duration
	for {
		err := rc.Read(read)
		if err == nil {
			err = rerr
		}
		if err != nil {
			if s.isShutdown() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// A read that keeps failing (the kernel out of buffers, say)
			// must not spin a core and flood the log: back off as the
			// TCP accept loop does, from 5 ms up to 1 s.
			delay = retryDelay(delay, readBackoffMin, readBackoffMax)
			s.Logger.Warn("udp read failed; retrying", "entrypoint", s.Entrypoint, "error", err, "delay", delay)
			if !waitOrQuit(delay, quit) {
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.forwardBatch(b)
	}
}

// listenerRecv is the listener's batch read (a var for the tests).
var listenerRecv = recvBatch

// The listener's backoff after a failed read (vars for the tests).
var readBackoffMin, readBackoffMax = 5 * time.Millisecond, time.Second

// open starts a flow for client, or returns nil when it cannot and counts
// the n datagrams that wanted it as dropped for the reason.
func (s *UDPServer) open(client netip.AddrPort, n int) *flow {
	s.mu.RLock()
	full := s.MaxFlows > 0 && len(s.flows) >= s.MaxFlows
	closing := s.shutdown
	// Update may change these; a flow keeps those it was opened with.
	pool, route, svc, pp, m := s.Pool, s.Route, s.Service, s.ProxyProtocol, s.Metrics
	s.mu.RUnlock()
	if closing {
		return nil
	}
	if pool == nil {
		s.Logger.Debug("datagram dropped: no udp_route", "entrypoint", s.Entrypoint, "client", client)
		return nil
	}
	if full {
		m.dropN(dropFull, n)
		s.Logger.Debug("datagram dropped: max_flows reached", "entrypoint", s.Entrypoint, "client", client)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	bc, err := pool.Dial(ctx, "udp")
	cancel()
	if err != nil {
		m.dropN(dropNoBackend, n)
		s.Logger.Error("datagram dropped: no backend", "entrypoint", s.Entrypoint, "route", route,
			"client", client, "error", err)
		return nil
	}
	f := &flow{client: client, pool: pool, route: route, service: svc, metrics: m,
		backend: bc, conn: bc.Conn.(*net.UDPConn), addr: replyAddr(client), stats: flowStats{start: time.Now()}}
	f.out = newDgramWriter(f.conn)
	if pp {
		src := netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		if f.head, err = proxyHeaderUDP(src, addrPort(s.pc.LocalAddr())); err != nil || len(f.head) > headRoom {
			s.Logger.Error("PROXY header", "client", client, "error", err)
			f.conn.Close()
			bc.Release()
			return nil
		}
	}
	f.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		f.conn.Close()
		bc.Release()
		return nil
	}
	s.flows[client] = f
	s.wg.Add(1)
	s.mu.Unlock()
	m.opened()
	s.Logger.Debug("flow opened", "entrypoint", s.Entrypoint, "route", route,
		"client", client, "backend", bc.Backend.Addr)
	go s.reply(f)
	return f
}

// replyAddr is client as the replies' writes take it. A numeric zone (how
// recvBatch reports a scope) becomes the interface's name where the writes
// go through package net, whose zone cache knows names but refreshes
// itself for every number; Linux's writer takes the number as it is.
func replyAddr(client netip.AddrPort) *net.UDPAddr {
	a := net.UDPAddrFromAddrPort(client)
	if a.Zone != "" && zoneNames {
		if i, err := strconv.Atoi(a.Zone); err == nil {
			if ifi, err := net.InterfaceByIndex(i); err == nil {
				a.Zone = ifi.Name
			}
		}
	}
	return a
}

// reply relays the backend's datagrams to the client until the flow is idle
// for the idle timeout or fails.
func (s *UDPServer) reply(f *flow) {
	defer s.wg.Done()
	idle := s.idle()
	rc, err := f.conn.SyscallConn()
	if err != nil {
		s.failed(f, err)
		return
	}
	// A batch is taken from the pool only once the socket is readable, and
	// returned before the next wait.
	var rerr error
	relay := func(fd uintptr) bool {
		b := batches.Get().(*dgramBatch)
		err := recvBatch(fd, b)
		if err == syscall.EAGAIN {
			batches.Put(b)
			return false
		}
		if rerr = err; err == nil {
			s.replyBatch(f, b)
		}
		batches.Put(b)
		return true
	}
	_ = f.conn.SetReadDeadline(time.Unix(0, f.last.Load()).Add(idle))
	for {
		rerr = nil
		err := rc.Read(relay)
		if err == nil {
			err = rerr
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			idle = s.idle() // shorter once Shutdown has begun
			last := time.Unix(0, f.last.Load())
			if time.Since(last) < idle {
				_ = f.conn.SetReadDeadline(last.Add(idle))
				continue
			}
			if s.expire(f, last) {
				return
			}
			continue
		}
		s.failed(f, err)
		return
	}
}

// expire removes f if it is still idle; a datagram that raced in keeps it.
func (s *UDPServer) expire(f *flow, last time.Time) bool {
	s.mu.Lock()
	if f.last.Load() != last.UnixNano() {
		s.mu.Unlock()
		_ = f.conn.SetReadDeadline(time.Unix(0, f.last.Load()).Add(s.idleLocked()))
		return false
	}
	f.stats.reason = "idle"
	s.remove(f)
	s.mu.Unlock()
	s.Logger.Debug("flow expired", "entrypoint", s.Entrypoint, "client", f.client, "backend", f.backend.Backend.Addr)
	return true
}

// failed ends a flow after an error toward its backend. A refused datagram
// (ICMP port unreachable) marks the backend down so the client's next
// datagram opens a flow to another one.
func (s *UDPServer) failed(f *flow, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		f.pool.MarkDown(f.backend.Backend)
	}
	s.mu.Lock()
	if f.stats.reason == "" {
		f.stats.reason = "error"
	}
	s.remove(f)
	s.mu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		s.Logger.Warn("flow ended", "entrypoint", s.Entrypoint, "client", f.client,
			"backend", f.backend.Backend.Addr, "error", err)
	}
}

// remove drops f from the table and closes its socket; s.mu must be held.
// It is safe to call more than once.
func (s *UDPServer) remove(f *flow) {
	if s.flows[f.client] != f {
		return
	}
	delete(s.flows, f.client)
	f.conn.Close()
	f.backend.Release()
	s.flowEnded(f)
	if len(s.flows) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

func (s *UDPServer) isShutdown() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.shutdown
}

// Shutdown stops opening flows and lets open ones run until they go idle or
// ctx is done; then it closes the socket and every flow, and waits for the
// goroutines it started. The error is ctx's if flows had to be cut.
func (s *UDPServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	var drained chan struct{}
	if len(s.flows) > 0 {
		drained = make(chan struct{})
		s.drained = drained
	}
	for _, f := range s.flows {
		_ = f.conn.SetReadDeadline(time.Unix(0, f.last.Load()).Add(s.idleLocked()))
	}
	s.mu.Unlock()
	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.Close()
	return err
}

// Close closes the socket and every flow at once.
func (s *UDPServer) Close() error {
	s.mu.Lock()
	s.shutdown = true
	var err error
	if s.pc != nil {
		err = s.pc.Close()
	}
	if s.quit != nil {
		select {
		case <-s.quit:
		default:
			close(s.quit)
		}
	}
	for _, f := range s.flows {
		s.remove(f)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
