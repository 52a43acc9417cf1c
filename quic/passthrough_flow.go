package quic

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/upstream"
)

// flow is one passthrough client's conversation with one backend, over a
// connected socket of its own (the l4.UDPServer pattern).
type flow struct {
	peer    *peer
	route   string
	pool    *upstream.Pool
	backend *upstream.Conn
	conn    *net.UDPConn
	client  atomic.Pointer[netip.AddrPort] // where replies go; moves on migration
	opened  time.Time
	// confirmed: the client sent something other than an Initial after the
	// flow opened, so it received the backend's answer. A flow opened by
	// forged Initials (their keys are public, their source address can be
	// spoofed) never is, and ends after HelloTimeout instead of holding a
	// socket and a flow slot for the whole idle timeout.
	confirmed atomic.Bool

	cids    [maxCIDsPerFlow]string // tracked connection IDs, guarded by Demux.mu
	nCIDs   int
	removed bool // guarded by Demux.mu

	lastSCID [MaxCIDLen]byte // the reply goroutine's memo: SCID already tracked
	lastLen  int
	// cidLen is the length of the backend's connection IDs, from its first
	// long header: a server parses its own short headers, so it keeps one
	// length for all the IDs it issues.
	cidLen atomic.Int32

	lastDCID    [MaxCIDLen]byte // Serve's memo: the client's DCID already tracked
	lastDCIDLen int

	log flowLog // the access log line's numbers (passthrough_log.go)
}

// openFlow pins a pending address to a backend of r and replays its
// buffered datagrams; d.mu is held.
func (d *Demux) openFlow(p *peer, r *PassRoute) {
	bufs := p.pend.bufs
	if d.nFlows >= d.opts.MaxFlows {
		d.st.flowsFull.Add(1)
		d.log.Debug("QUIC passthrough refused: max flows reached", "entrypoint", d.opts.Entrypoint, "client", p.key)
		d.dropPending(p)
		return
	}
	// A UDP dial is a socket and a connect: no packet leaves, nothing waits.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	bc, err := r.Pool.Dial(ctx, "udp")
	cancel()
	if err != nil {
		d.st.noBackend.Add(1)
		d.log.Error("QUIC passthrough: no backend", "entrypoint", d.opts.Entrypoint, "route", r.Name, "client", p.key, "error", err)
		d.dropPending(p)
		return
	}
	conn, ok := bc.Conn.(*net.UDPConn)
	if !ok { // a TLS backend address; config validation keeps it out
		bc.Conn.Close()
		bc.Release()
		d.st.noBackend.Add(1)
		d.dropPending(p)
		return
	}
	d.collPool.Put(p.pend.col)
	p.pend = nil
	d.nPending--
	now := time.Now()
	f := &flow{peer: p, route: r.Name, pool: r.Pool, backend: bc, conn: conn, opened: now, log: flowLog{start: now}}
	addr := p.key
	f.client.Store(&addr)
	p.flow = f
	d.nFlows++
	d.st.routed.Add(1)
	d.log.Debug("QUIC passthrough flow opened", "entrypoint", d.opts.Entrypoint, "route", r.Name,
		"client", addr, "backend", bc.Backend.Addr)
	d.wg.Add(1)
	go d.reply(f)
	for _, b := range bufs {
		d.toBackend(f, b)
	}
}

// toBackend relays a client datagram; it never takes d.mu.
func (d *Demux) toBackend(f *flow, b []byte) {
	if _, err := f.conn.Write(b); err != nil {
		d.st.writeFailed.Add(1)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// The reply goroutine sees the socket closed and ends the flow.
			f.pool.MarkDown(f.backend.Backend)
			f.conn.Close()
		}
		return
	}
	d.st.toBackend.Add(1)
	f.log.in.Add(int64(len(b)))
}

// reply relays the backend's datagrams to the client until the flow's
// socket is closed (idle, Close) or fails.
func (d *Demux) reply(f *flow) {
	defer d.wg.Done()
	rc, err := f.conn.SyscallConn()
	if err != nil {
		d.endFlow(f, err)
		return
	}
	err = l4.ReadDatagrams(rc, func(b []byte) {
		f.peer.last.Store(time.Now().UnixNano())
		if len(b) > 0 && b[0]&0x80 != 0 {
			d.trackCID(f, b)
		}
		if _, err := d.conn.WriteToUDPAddrPort(b, *f.client.Load()); err != nil {
			d.st.writeFailed.Add(1)
		} else {
			d.st.toClient.Add(1)
			f.log.out.Add(int64(len(b)))
		}
	})
	d.endFlow(f, err)
}

// trackCID records the connection ID a backend chose, from one of its
// long-header packets, so the client's short-header packets can find the
// flow from a new address.
func (d *Demux) trackCID(f *flow, b []byte) {
	h, err := ParseLongHeader(b)
	if err != nil || len(h.SCID) == 0 || string(h.SCID) == string(f.lastSCID[:f.lastLen]) {
		return
	}
	f.lastLen = copy(f.lastSCID[:], h.SCID)
	f.cidLen.CompareAndSwap(0, int32(len(h.SCID)))
	d.mu.Lock()
	if !f.removed && !d.cids.add(f, h.SCID) {
		d.st.cidsFull.Add(1)
	}
	d.mu.Unlock()
}

// learnDCID tracks the connection ID in a short-header packet of f's
// current client. Clients switch to an ID the backend issued in an
// encrypted NEW_CONNECTION_ID frame soon after the handshake (quic-go
// does at once); seeing it in use is the only way to learn it. It costs a
// comparison per datagram and the lock only when the ID changes.
func (d *Demux) learnDCID(f *flow, b []byte) {
	n := int(f.cidLen.Load())
	if n == 0 || len(b) < 1+n || string(b[1:1+n]) == string(f.lastDCID[:f.lastDCIDLen]) {
		return
	}
	f.lastDCIDLen = copy(f.lastDCID[:], b[1:1+n])
	d.mu.Lock()
	if !f.removed && !d.cids.add(f, b[1:1+n]) {
		d.st.cidsFull.Add(1)
	}
	d.mu.Unlock()
}

// trailingShortHeader returns the short-header packet of datagram b: b
// itself if it starts with one, or the packet after the coalesced
// long-header packets it starts with (RFC 9000 §12.2: a short header is
// always last, it has no Length field). quic-go sends its first 1-RTT
// packet, already with the connection ID it switched to, behind its last
// Handshake packet; missing it would leave a rebinding right after the
// handshake unrecognised. nil if there is none or b is malformed; an empty
// b is returned as is. Each long-header packet is at least 7 bytes, so the
// walk is bounded by len(b)/7.
func trailingShortHeader(b []byte) []byte {
	if len(b) == 0 || b[0]&0x80 == 0 {
		return b
	}
	for len(b) > 0 && b[0]&0x80 != 0 {
		h, err := ParseLongHeader(b)
		// Retry, Version Negotiation and unknown versions have no Length
		// field: they run to the end of the datagram.
		if err != nil || h.Type == TypeRetry || h.Len >= len(b) {
			return nil
		}
		b = b[h.Len:]
	}
	// Bytes after the last long-header packet without the fixed bit are
	// padding some stacks append (zeros), not a packet: learning an ID from
	// them would evict a real one.
	if b[0]&0x40 == 0 {
		return nil
	}
	return b
}

// migrate moves f to the client address addr (NAT rebinding or
// migration); d.mu is held. The backend sees no change: it talks to the
// flow's own socket. Path validation is the endpoints' business.
func (d *Demux) migrate(f *flow, addr netip.AddrPort) {
	old := f.peer.key
	delete(d.peers, old)
	f.peer.key = addr
	d.peers[addr] = f.peer
	f.client.Store(&addr)
	f.peer.last.Store(time.Now().UnixNano())
	f.confirmed.Store(true)
	d.st.migrations.Add(1)
	d.log.Debug("QUIC passthrough flow migrated", "entrypoint", d.opts.Entrypoint, "route", f.route, "from", old, "to", addr)
}

// endFlow ends a flow after its socket failed or was closed.
func (d *Demux) endFlow(f *flow, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		f.pool.MarkDown(f.backend.Backend)
	}
	d.mu.Lock()
	if f.log.reason == "" && !errors.Is(err, net.ErrClosed) {
		f.log.reason = "error"
	}
	d.removeFlow(f)
	d.mu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		d.log.Warn("QUIC passthrough flow ended", "entrypoint", d.opts.Entrypoint, "route", f.route,
			"client", *f.client.Load(), "backend", f.backend.Backend.Addr, "error", err)
	}
}

// removeFlow forgets f and closes its socket; d.mu is held. It is safe to
// call more than once.
func (d *Demux) removeFlow(f *flow) {
	if f.removed {
		return
	}
	f.removed = true
	if d.peers[f.peer.key] == f.peer {
		delete(d.peers, f.peer.key)
	}
	d.nFlows--
	d.cids.remove(f)
	f.conn.Close()
	f.backend.Release()
	d.logFlow(f)
	if d.nFlows == 0 && d.drained != nil {
		close(d.drained)
		d.drained = nil
	}
}

// flowDrainIdle is the idle timeout of flows once Shutdown has begun: a QUIC
// connection that has been quiet this long has closed or is about to.
const flowDrainIdle = time.Second

// janitor expires pending addresses, idle flows and idle local peers.
func (d *Demux) janitor() {
	defer d.wg.Done()
	tick := min(d.opts.HelloTimeout, d.opts.IdleTimeout, 2*time.Second) / 2
	t := time.NewTicker(max(tick, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.sweep(now)
		}
	}
}

func (d *Demux) sweep(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	idle := d.opts.IdleTimeout
	if d.shutdown {
		idle = min(idle, flowDrainIdle)
	}
	for _, p := range d.peers {
		quiet := now.Sub(time.Unix(0, p.last.Load()))
		switch {
		case p.pend != nil:
			if now.Sub(p.pend.start) >= d.opts.HelloTimeout {
				d.st.helloTimeout.Add(1)
				d.dropPending(p)
			}
		case p.flow != nil:
			f := p.flow
			if !f.confirmed.Load() && now.Sub(f.opened) >= d.opts.HelloTimeout {
				d.st.unconfirmed.Add(1)
				if f.log.reason == "" {
					f.log.reason = "unconfirmed"
				}
				d.removeFlow(f)
			} else if quiet >= idle {
				if f.log.reason == "" {
					f.log.reason = "idle"
				}
				d.removeFlow(f)
			}
		default:
			if quiet >= d.opts.IdleTimeout {
				delete(d.peers, p.key)
				d.nLocal--
			}
		}
	}
}

// Shutdown stops opening passthrough flows (new clients go to the local
// server, which is shutting down too), lets open flows run until they are
// quiet for a second or ctx is done, then closes everything like Close.
// The error is ctx's if flows had to be cut.
func (d *Demux) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.shutdown = true
	var drained chan struct{}
	if d.nFlows > 0 {
		drained = make(chan struct{})
		d.drained = drained
	}
	d.mu.Unlock()
	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	d.Close()
	return err
}

// Close closes the socket, every flow and Local, and waits for the
// goroutines the Demux started. Serve returns l4.ErrServerClosed.
func (d *Demux) Close() error {
	d.mu.Lock()
	var err error
	if !d.closed {
		d.closed, d.shutdown = true, true
		err = d.conn.Close()
		for _, p := range d.peers {
			switch {
			case p.flow != nil:
				d.removeFlow(p.flow)
			case p.pend != nil:
				d.dropPending(p)
			}
		}
		clear(d.peers)
		d.nLocal = 0
	}
	d.mu.Unlock()
	d.closeOnce.Do(func() { close(d.stop) })
	d.local.Close()
	d.wg.Wait()
	return err
}

// DemuxStats are a Demux's gauges and counters. Datagram counters count
// datagrams; Dropped* count what a bound refused.
type DemuxStats struct {
	Flows, Pending, LocalPeers, CIDs int

	ToBackend, ToClient, ToLocal uint64 // datagrams relayed
	Routed                       uint64 // hellos that opened a passthrough flow
	Unrouted                     uint64 // hellos (or unreadable Initials) handed to the local server
	Migrations                   uint64 // flows moved to a new client address

	DroppedPendingFull  uint64 // Initials from new addresses past MaxPending
	DroppedPendingBytes uint64 // pending addresses past MaxPendingBytes
	DroppedHelloTimeout uint64 // pending addresses past HelloTimeout
	DroppedFlowsFull    uint64 // hellos past MaxFlows
	DroppedNoBackend    uint64 // hellos whose route had no reachable backend
	DroppedLocalFull    uint64 // datagrams past LocalQueue
	DroppedNoLocal      uint64 // datagrams for the local server when Local was never called
	DroppedWrite        uint64 // failed writes either way
	DroppedCIDsFull     uint64 // connection IDs not tracked past MaxCIDs (or held by another flow)
	DroppedUnconfirmed  uint64 // flows ended because the client sent nothing but Initials for HelloTimeout
}

type demuxCounters struct {
	toBackend, toClient, toLocal, routed, unrouted, migrations atomic.Uint64
	pendingFull, pendingBytes, helloTimeout, flowsFull         atomic.Uint64
	noBackend, localFull, noLocal, writeFailed, cidsFull       atomic.Uint64
	unconfirmed                                                atomic.Uint64
}

// Stats returns the current gauges and counters.
func (d *Demux) Stats() DemuxStats {
	d.mu.RLock()
	s := DemuxStats{Flows: d.nFlows, Pending: d.nPending, LocalPeers: d.nLocal, CIDs: len(d.cids.m)}
	d.mu.RUnlock()
	c := &d.st
	s.ToBackend, s.ToClient, s.ToLocal = c.toBackend.Load(), c.toClient.Load(), c.toLocal.Load()
	s.Routed, s.Unrouted, s.Migrations = c.routed.Load(), c.unrouted.Load(), c.migrations.Load()
	s.DroppedPendingFull, s.DroppedPendingBytes = c.pendingFull.Load(), c.pendingBytes.Load()
	s.DroppedHelloTimeout, s.DroppedFlowsFull = c.helloTimeout.Load(), c.flowsFull.Load()
	s.DroppedNoBackend, s.DroppedLocalFull, s.DroppedNoLocal = c.noBackend.Load(), c.localFull.Load(), c.noLocal.Load()
	s.DroppedWrite, s.DroppedCIDsFull = c.writeFailed.Load(), c.cidsFull.Load()
	s.DroppedUnconfirmed = c.unconfirmed.Load()
	return s
}
