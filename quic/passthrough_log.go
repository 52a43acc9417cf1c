package quic

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// flowLog is what a passthrough flow's access log line reports.
type flowLog struct {
	start   time.Time
	in, out atomic.Int64 // datagram bytes from and to the client
	// reason is why the flow ended, set under Demux.mu before removeFlow:
	// "idle", "error"; "" means the Demux closed ("shutdown").
	reason string
}

// logFlow writes f's access log line; d.mu is held (the write only queues).
func (d *Demux) logFlow(f *flow) {
	if d.opts.AccessLog.Load() == nil {
		return
	}
	reason := f.log.reason
	if reason == "" {
		reason = "shutdown"
	}
	client := *f.client.Load()
	d.opts.AccessLog.LogConn(&accesslog.Conn{
		Time: f.log.start, Network: "quic", Entrypoint: d.opts.Entrypoint, Route: f.route, Service: f.pool.Name(),
		Client: netip.AddrPortFrom(client.Addr().Unmap(), client.Port()), Backend: f.backend.Backend.Addr,
		BytesIn: f.log.in.Load(), BytesOut: f.log.out.Load(), Duration: time.Since(f.log.start), Reason: reason,
	})
}
