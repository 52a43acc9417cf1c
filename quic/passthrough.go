package quic

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/l4"
	"github.com/proxynow/proxynow/upstream"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// PassRoute is one quic_route: QUIC connections whose ClientHello names one
// of SNI are relayed, untouched, to a backend of Pool.
type PassRoute struct {
	Name string
	// SNI holds exact names and "*.example.com" wildcards (exactly one more
	// label), matched case-insensitively with a trailing dot ignored. Empty
	// means every hello, with or without SNI.
	SNI  []string
	Pool *upstream.Pool
}

// DemuxOptions tune a Demux; zero fields take the default in brackets.
type DemuxOptions struct {
	Entrypoint string       // for logs
	Logger     *slog.Logger // [discard]
	// AccessLog, when it holds a Writer, gets one line per passthrough flow
	// when it ends.
	AccessLog *accesslog.Switch
	// MaxPending bounds the client addresses whose ClientHello is still
	// being collected [1024]. Initials from more new addresses are dropped.
	MaxPending int
	// MaxPendingBytes bounds the datagram bytes buffered for one pending
	// address, and so the ClientHello's size [16 KiB, ~13 full datagrams;
	// real hellos take 1 to 3].
	MaxPendingBytes int
	// HelloTimeout is how long an address may take to complete its
	// ClientHello before its buffered datagrams are dropped, and how long
	// a new flow may go on with only Initials from its client (a forged
	// flow) [3s: past the first Initial retransmissions].
	HelloTimeout time.Duration
	// MaxFlows bounds the passthrough flows [16384]; a hello that would
	// open another is dropped.
	MaxFlows int
	// IdleTimeout ends a passthrough flow, or forgets a local client
	// address, after this long without a datagram either way [60s; keep it
	// above the backends' QUIC idle timeout].
	IdleTimeout time.Duration
	// MaxLocalPeers bounds the remembered addresses of the local server's
	// clients [16384]; past it their datagrams are still delivered, only
	// parsed again.
	MaxLocalPeers int
	// MaxCIDs bounds the backend-chosen connection IDs tracked for
	// migration [4 × MaxFlows].
	MaxCIDs int
	// LocalQueue is how many datagrams wait for the local server to read
	// them before more are dropped [1024].
	LocalQueue int
}

func (o *DemuxOptions) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1024
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 16 << 10
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 3 * time.Second
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 16384
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxLocalPeers <= 0 {
		o.MaxLocalPeers = 16384
	}
	if o.MaxCIDs <= 0 {
		o.MaxCIDs = 4 * o.MaxFlows
	}
	if o.LocalQueue <= 0 {
		o.LocalQueue = 1024
	}
}

// Demux owns a UDP entrypoint's socket and splits its QUIC traffic. Use:
//
//	d, err := quic.NewDemux(udpConn, routes, quic.DemuxOptions{Logger: log})
//	tr := &quicgo.Transport{Conn: d.Local()} // the HTTP/3 server's transport
//	go d.Serve()
//	...
//	// stop the HTTP/3 server and tr first, then:
//	d.Shutdown(ctx)
//
// A client whose ClientHello matches a PassRoute gets a flow relayed both
// ways to a backend, untouched; every other datagram goes to the local
// server reading Local (quic-go's HTTP/3 server), or is dropped if Local
// was never called.
//
// Each client address is, in turn: pending (its Initials are buffered and
// opened until the ClientHello is complete), then either a passthrough flow
// or a local peer. Datagrams of flows and local peers are not parsed. A
// short-header datagram from an unknown address that carries a connection
// ID a backend chose is taken as that flow's client after NAT rebinding:
// the flow moves to the new address.
type Demux struct {
	conn   *net.UDPConn
	opts   DemuxOptions
	log    *slog.Logger
	routes atomic.Pointer[passTable]
	local  *localConn
	st     demuxCounters

	mu        sync.RWMutex
	peers     map[netip.AddrPort]*peer
	nPending  int
	nFlows    int
	nLocal    int
	cids      cidTable
	serving   bool
	shutdown  bool
	closed    bool
	drained   chan struct{} // closed when the last flow ends during Shutdown
	stop      chan struct{} // stops the janitor
	collPool  sync.Pool     // *Collector
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// peer is one client address. Its state moves from pending to flow or
// local only on Serve's goroutine, under Demux.mu.
type peer struct {
	key  netip.AddrPort // its key in Demux.peers, guarded by mu
	last atomic.Int64   // unix nanoseconds of the last datagram either way
	pend *pending
	flow *flow
	udp  *net.UDPAddr // for the local server's ReadFrom, made once
}

// pending is a client address whose ClientHello is incomplete.
type pending struct {
	col   *Collector
	bufs  [][]byte // the datagrams so far, in arrival order
	bytes int
	start time.Time
}

// NewDemux builds a Demux for conn and routes. It reads nothing until
// Serve. The error is about routes (a duplicate name, a missing pool).
func NewDemux(conn *net.UDPConn, routes []PassRoute, opts DemuxOptions) (*Demux, error) {
	opts.defaults()
	d := &Demux{
		conn:  conn,
		opts:  opts,
		log:   opts.Logger,
		peers: make(map[netip.AddrPort]*peer),
		stop:  make(chan struct{}),
	}
	d.cids.init(opts.MaxCIDs)
	d.local = newLocalConn(d, opts.LocalQueue)
	if err := d.SetRoutes(routes); err != nil {
		return nil, err
	}
	return d, nil
}

// SetRoutes replaces the routes, for a reload. Flows already open keep
// their backend; only new clients see the new routes.
func (d *Demux) SetRoutes(routes []PassRoute) error {
	t, err := compilePassRoutes(routes)
	if err != nil {
		return fmt.Errorf("entrypoint %q: %w", d.opts.Entrypoint, err)
	}
	d.routes.Store(t)
	return nil
}

// Local returns the connection the local server reads: ReadFrom yields the
// datagrams no PassRoute claims, WriteTo sends on the real socket. Give it
// to quic.Transport{Conn: ...}. It is not a *net.UDPConn, so quic-go runs
// without GSO, ECN and path MTU discovery on it (the price of sharing the
// port with passthrough). Closing it does not close the socket.
func (d *Demux) Local() net.PacketConn {
	d.local.enabled.Store(true)
	return d.local
}

// demuxMaxDatagram is the largest UDP payload.
const demuxMaxDatagram = 65535 - 8

// Serve reads the socket until Shutdown or Close and returns
// l4.ErrServerClosed then.
func (d *Demux) Serve() error {
	d.mu.Lock()
	if d.closed || d.serving {
		d.mu.Unlock()
		return l4.ErrServerClosed
	}
	d.serving = true
	d.wg.Add(1)
	d.mu.Unlock()
	go d.janitor()
	// One socket takes every client's datagrams (see l4.UDPServer).
	_ = d.conn.SetReadBuffer(4 << 20)
	_ = d.conn.SetWriteBuffer(4 << 20)
	buf := make([]byte, demuxMaxDatagram)
	for {
		n, addr, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if d.isClosed() || errors.Is(err, net.ErrClosed) {
				return l4.ErrServerClosed
			}
			d.log.Warn("udp read failed", "entrypoint", d.opts.Entrypoint, "error", err)
			continue
		}
		d.handle(buf[:n], addr)
	}
}

// handle routes one datagram from addr. Known flows and local peers take
// the read lock only.
func (d *Demux) handle(b []byte, addr netip.AddrPort) {
	d.mu.RLock()
	p := d.peers[addr]
	d.mu.RUnlock()
	if p != nil && p.pend == nil { // p.pend and p.flow change only on this goroutine
		p.last.Store(time.Now().UnixNano())
		if f := p.flow; f != nil {
			if sh := trailingShortHeader(b); len(sh) > 0 {
				d.learnDCID(f, sh)
			}
			if !f.confirmed.Load() {
				confirmFlow(f, b)
			}
			d.toBackend(f, b)
		} else {
			d.toLocal(b, p.udp)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p = d.peers[addr]; p != nil && p.pend != nil { // the janitor may have expired it
		d.addPending(p, b)
		return
	}
	d.first(b, addr)
}

// confirmFlow marks f as confirmed if b is not a client Initial (see
// flow.confirmed). It parses only until then.
func confirmFlow(f *flow, b []byte) {
	if h, err := ParseLongHeader(b); err != nil || h.Type != TypeInitial {
		f.confirmed.Store(true)
	}
}

// first handles a datagram from an address with no state; d.mu is held.
func (d *Demux) first(b []byte, addr netip.AddrPort) {
	if !IsLongHeader(b) {
		if f := d.cids.lookupShort(b); f != nil {
			d.migrate(f, addr)
			d.toBackend(f, b)
			return
		}
		d.newLocal(b, addr, true)
		return
	}
	if d.routes.Load().empty() {
		d.newLocal(b, addr, true) // nothing to route: no parsing
		return
	}
	h, err := ParseLongHeader(b)
	if err == nil && h.Type != TypeInitial {
		// A Handshake or 0-RTT packet from a new address: a rebinding
		// during the handshake, or the local server's client.
		if f := d.cids.lookup(h.DCID); f != nil {
			d.migrate(f, addr)
			d.toBackend(f, b)
			return
		}
	}
	if err != nil || h.Type != TypeInitial || len(b) < MinInitialDatagram || d.shutdown {
		// Unknown versions too: quic-go answers them with Version
		// Negotiation (RFC 9000 §6), and drops what is not QUIC. Only a
		// well-formed v1/v2 packet makes the address the local server's:
		// after Version Negotiation the client's next Initial, from the
		// same address, must be parsed for its SNI.
		d.newLocal(b, addr, err == nil && len(b) >= MinInitialDatagram || d.shutdown)
		return
	}
	if d.nPending >= d.opts.MaxPending {
		d.st.pendingFull.Add(1)
		return
	}
	c, _ := d.collPool.Get().(*Collector)
	if c == nil {
		c = new(Collector)
	}
	c.Reset()
	c.MaxCryptoData = d.opts.MaxPendingBytes
	p := &peer{key: addr, pend: &pending{col: c, start: time.Now()}}
	p.last.Store(time.Now().UnixNano())
	d.peers[addr] = p
	d.nPending++
	d.addPending(p, b)
}

// addPending buffers one more datagram of a pending address and routes the
// address once its ClientHello is complete; d.mu is held.
func (d *Demux) addPending(p *peer, b []byte) {
	pd := p.pend
	if pd.bytes+len(b) > d.opts.MaxPendingBytes {
		d.st.pendingBytes.Add(1)
		d.dropPending(p)
		return
	}
	pd.bufs = append(pd.bufs, append([]byte(nil), b...))
	pd.bytes += len(b)
	p.last.Store(time.Now().UnixNano())
	done, err := pd.col.Add(b)
	if err != nil && (pd.col.Err() != nil || len(pd.bufs) == 1) {
		// Not a ClientHello this package can read: the local server
		// decides (it drops garbage like any QUIC server).
		d.log.Debug("QUIC Initial not routable", "entrypoint", d.opts.Entrypoint, "client", p.key, "error", err)
		// Remember the address only if its Initial was authentic.
		d.pendingToLocal(p, pd.col.Err() != nil)
		return
	}
	if !done {
		return
	}
	r := d.routes.Load().match(pd.col.Hello())
	if r == nil || d.shutdown { // no new flow once Shutdown has begun
		d.pendingToLocal(p, true)
		return
	}
	d.openFlow(p, r)
}

// dropPending forgets a pending address and its datagrams; d.mu is held.
// p.pend stays set: Serve's goroutine reads it without the lock, and finds
// p gone from the map when it looks again under the lock.
func (d *Demux) dropPending(p *peer) {
	delete(d.peers, p.key)
	d.nPending--
	d.collPool.Put(p.pend.col)
	p.pend.col = nil
}

// pendingToLocal hands a pending address, its buffered datagrams first, to
// the local server; d.mu is held.
func (d *Demux) pendingToLocal(p *peer, remember bool) {
	bufs := p.pend.bufs
	d.dropPending(p)
	d.st.unrouted.Add(1)
	udp := d.newLocal(nil, p.key, remember)
	for _, b := range bufs {
		d.toLocal(b, udp)
	}
}

// newLocal delivers b (if any) to the local server and, with remember,
// takes addr as its client if there is room: its later datagrams skip
// parsing. d.mu is held. It returns the address as the local server sees
// it.
func (d *Demux) newLocal(b []byte, addr netip.AddrPort, remember bool) *net.UDPAddr {
	udp := net.UDPAddrFromAddrPort(addr)
	if remember && d.local.enabled.Load() && d.nLocal < d.opts.MaxLocalPeers {
		p := &peer{key: addr, udp: udp}
		p.last.Store(time.Now().UnixNano())
		d.peers[addr] = p
		d.nLocal++
	}
	if b != nil {
		d.toLocal(b, udp)
	}
	return udp
}

// toLocal queues a datagram for the local server.
func (d *Demux) toLocal(b []byte, from *net.UDPAddr) {
	if !d.local.enabled.Load() {
		d.st.noLocal.Add(1)
		return
	}
	if !d.local.deliver(b, from) {
		d.st.localFull.Add(1)
		return
	}
	d.st.toLocal.Add(1)
}

func (d *Demux) isClosed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closed
}
