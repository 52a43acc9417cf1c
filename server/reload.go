package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// ErrNotRunning is returned by Reload before Start or after Shutdown.
var ErrNotRunning = errors.New("server is not running")

// Changes says what a reload did, for the log.
type Changes struct {
	ListenersAdded, ListenersRemoved, ListenersKept []string
	RoutesAdded, RoutesRemoved, RoutesChanged       []string
	ServicesAdded, ServicesRemoved, ServicesChanged []string
	ServicesKept                                    int
	HTTPServersReplaced                             int
}

// LogAttrs is the change list as slog attributes.
func (c *Changes) LogAttrs() []any {
	var out []any
	add := func(k string, v []string) {
		if len(v) > 0 {
			out = append(out, k, v)
		}
	}
	add("listeners_added", c.ListenersAdded)
	add("listeners_removed", c.ListenersRemoved)
	out = append(out, "listeners_kept", len(c.ListenersKept))
	add("routes_added", c.RoutesAdded)
	add("routes_removed", c.RoutesRemoved)
	add("routes_changed", c.RoutesChanged)
	add("services_added", c.ServicesAdded)
	add("services_removed", c.ServicesRemoved)
	add("services_changed", c.ServicesChanged)
	out = append(out, "services_kept", c.ServicesKept)
	if c.HTTPServersReplaced > 0 {
		out = append(out, "http_servers_replaced", c.HTTPServersReplaced)
	}
	return out
}

// Reload switches the running server to cfg, which must be valid. It
// compiles cfg first, taking over every pool, middleware, certificate
// store, route handler and socket that cfg leaves unchanged, and binds the
// new entrypoints' sockets; if any of that fails nothing changes and the
// error says why. Then it swaps atomically: connections accepted from
// then on, and new requests on open keep-alive connections, see cfg.
// Requests in flight finish on the configuration they started with; TCP
// connections and UDP flows of routes cfg removed or changed, and the
// entrypoints it removed, are drained in the background for cfg's grace
// period and then closed. Reloads are serialised.
//
// A changed log.access opens its new file before the swap (a path that
// cannot be opened fails the reload) and takes over at the swap; before
// Reload returns, the old log has written every line queued and closed
// its file. An unchanged one has its file reopened (see ReopenAccessLog).
// Both happen outside the lock.
func (s *Server) Reload(cfg *config.Config) (*Changes, error) {
	ch, al, err := s.reload(cfg)
	if err == nil {
		al.finish()
	}
	return ch, err
}

func (s *Server) reload(cfg *config.Config) (*Changes, *accessLogChange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		return nil, nil, ErrNotRunning
	}
	defer relaxGC()()
	old := s.gen
	g, err := compile(s, cfg, old, s.listeners)
	if err != nil {
		return nil, nil, err
	}
	al, err := s.prepareAccessLog(old.cfg.Log.Access, cfg.Log.Access)
	if err != nil {
		release(g, old)
		return nil, nil, err
	}
	if err := s.bind(g); err != nil {
		release(g, old)
		al.abort()
		return nil, nil, err
	}
	ch := diff(old, g, s.listeners)
	// The admin endpoint outlives configurations: its block is read at
	// start only.
	if !sameJSON(old.cfg.Admin, cfg.Admin) {
		s.log.Warn("reload: admin block changes take effect on restart")
	}
	removed, replaced, quics := s.swap(g)
	al.commit()
	ch.HTTPServersReplaced = len(replaced)
	// A removed TCP socket stops accepting now, before Reload returns, so
	// that the next reload may bind its address again.
	s.retire(old, g, removed, replaced, quics, cfg.Global.GracePeriod)
	return ch, al, nil
}

// retire drains what old had and g does not, for at most grace, and then
// releases it. Removed TCP listeners have stopped accepting when it
// returns.
func (s *Server) retire(old, g *generation, removed []*listener, replaced []*httpServer, quics []*quicSide, grace time.Duration) {
	ctx, cancel := context.WithTimeout(s.stopCtx, grace)
	var wg sync.WaitGroup
	for _, l := range removed {
		wg.Go(func() {
			if err := l.shutdown(ctx); err != nil {
				s.log.Warn("removed entrypoint: grace period over, open connections were closed",
					"entrypoint", l.entrypoint(), "error", err)
			}
		})
		if l.tcp != nil {
			<-l.served
		}
	}
	for _, hs := range replaced {
		wg.Go(func() { _ = hs.shutdown(ctx) })
	}
	for _, q := range quics {
		wg.Go(func() { _ = q.shutdown(ctx) })
	}
	for k, t := range old.tcpTrack {
		if g.tcpTrack[k] == t {
			continue
		}
		wg.Go(func() {
			if n := t.drain(ctx); n > 0 {
				s.log.Info("reload: closed connections of a removed or changed tcp_route after the grace period",
					"route", k.route, "connections", n)
			}
		})
	}
	for k, t := range old.httpTrack {
		if g.httpTrack[k] == t {
			continue
		}
		wg.Go(func() {
			if n := t.drain(ctx); n > 0 {
				s.log.Info("reload: grace period over with requests of a removed or changed http_route in flight",
					"route", k.route, "requests", n)
			}
		})
	}
	for _, p := range g.eps {
		if p.ln.udp == nil {
			continue
		}
		op := old.plan(p.key)
		if op == nil || op.udp.Pool == nil || op.udp.Pool == p.udp.Pool {
			continue
		}
		wg.Go(func() { drainFlows(ctx, p, op.udp.Pool) })
	}
	s.retireWG.Go(func() {
		defer cancel()
		wg.Wait()
		release(old, g)
	})
}

// flowPoll is how often a reload checks whether the UDP flows of a
// replaced route have ended (UDP has no close to wait for).
const flowPoll = 100 * time.Millisecond

// drainFlows waits for the flows of pool on p's listener to go idle, and
// closes those left when ctx is done.
func drainFlows(ctx context.Context, p *epPlan, pool *upstream.Pool) {
	t := time.NewTicker(flowPoll)
	defer t.Stop()
	for p.ln.udp.FlowsOf(pool) > 0 {
		select {
		case <-ctx.Done():
			p.ln.udp.CloseFlowsOf(pool)
			return
		case <-t.C:
		}
	}
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func (g *generation) plan(k listenerKey) *epPlan {
	for _, p := range g.eps {
		if p.key == k {
			return p
		}
	}
	return nil
}

// release stops and closes what g holds and keep does not: health checks
// and idle connections of pools, middlewares' connections, certificate
// polling.
func release(g, keep *generation) {
	kept := map[*serviceEntry]bool{}
	for _, e := range keep.services {
		kept[e] = true
	}
	for _, e := range g.services {
		if kept[e] {
			continue
		}
		if e.pool != nil {
			e.pool.Close()
		}
		if e.proxy != nil {
			e.proxy.CloseIdleConnections()
		}
	}
	keptMW := map[*mwEntry]bool{}
	for _, m := range keep.mws {
		keptMW[m] = true
	}
	for _, m := range g.mws {
		if !keptMW[m] {
			for _, c := range m.closers {
				_ = c.Close()
			}
		}
	}
	if g.acme != nil && g.acme != keep.acme {
		g.acme.Close()
	}
	if g.certs != nil && g.certs != keep.certs {
		g.certs.Close()
	}
}

// diff lists what changes from old to g; listeners are those serving old.
func diff(old, g *generation, listeners map[listenerKey]*listener) *Changes {
	ch := &Changes{}
	seen := map[listenerKey]bool{}
	for _, p := range g.eps {
		seen[p.key] = true
		if listeners[p.key] != nil {
			ch.ListenersKept = append(ch.ListenersKept, p.cfg.Name)
		} else {
			ch.ListenersAdded = append(ch.ListenersAdded, p.cfg.Name)
		}
	}
	for _, p := range old.eps {
		if !seen[p.key] {
			ch.ListenersRemoved = append(ch.ListenersRemoved, p.cfg.Name)
		}
	}
	for name, e := range g.services {
		switch o := old.services[name]; {
		case o == nil:
			ch.ServicesAdded = append(ch.ServicesAdded, name)
		case o != e:
			ch.ServicesChanged = append(ch.ServicesChanged, name)
		default:
			ch.ServicesKept++
		}
	}
	for name := range old.services {
		if g.services[name] == nil {
			ch.ServicesRemoved = append(ch.ServicesRemoved, name)
		}
	}
	eps := func(c *config.Config) map[string][]string {
		m := map[string][]string{}
		for _, r := range c.TCPRoutes {
			m["tcp_route "+r.Name] = r.Entrypoints
		}
		for _, r := range c.UDPRoutes {
			m["udp_route "+r.Name] = r.Entrypoints
		}
		for _, r := range c.HTTPRoutes {
			m["http_route "+r.Name] = r.Entrypoints
		}
		return m
	}
	before, after := old.routeFPs, g.routeFPs
	epsBefore, epsAfter := eps(old.cfg), eps(g.cfg)
	for n, fp := range after {
		switch o, ok := before[n]; {
		case !ok:
			ch.RoutesAdded = append(ch.RoutesAdded, n)
		case o != fp || !slices.Equal(epsBefore[n], epsAfter[n]):
			ch.RoutesChanged = append(ch.RoutesChanged, n)
		}
	}
	for n := range before {
		if _, ok := after[n]; !ok {
			ch.RoutesRemoved = append(ch.RoutesRemoved, n)
		}
	}
	for _, l := range [][]string{ch.RoutesAdded, ch.RoutesRemoved, ch.RoutesChanged, ch.ServicesAdded, ch.ServicesRemoved, ch.ServicesChanged} {
		sort.Strings(l)
	}
	return ch
}

// relaxGC lets the heap grow further than usual while a generation is
// compiled (tens of MB of short-lived garbage for a large configuration), so
// the collector runs less and its assists steal less time from requests
// being served meanwhile; the returned func restores the setting. A GOGC
// already higher, or off, is left alone.
func relaxGC() (restore func()) {
	if restore, ok := tuner.relaxTuned(); ok {
		return restore
	}
	prev := debug.SetGCPercent(reloadGCPercent)
	if prev < 0 || prev >= reloadGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// reloadGCPercent is GOGC while a reload compiles.
const reloadGCPercent = 400
