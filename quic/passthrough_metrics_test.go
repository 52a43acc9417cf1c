package quic

import (
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDemuxMetrics(t *testing.T) {
	ptLeaks(t)
	reg := prometheus.NewRegistry()
	m := NewDemuxMetrics(reg)
	backend := ptUDP(t)
	d, addr := ptDemux(t, ptRoutes(t, "quic-go.test", backend.LocalAddr().String()), DemuxOptions{Entrypoint: "websecure"})
	m.Add(d)
	to, _ := net.ResolveUDPAddr("udp", addr)
	c := ptUDP(t)
	for _, dg := range ptFlight(t) {
		ptSend(t, c, dg, to)
	}
	ptSend(t, ptUDP(t), []byte{0x40, 1}, to) // no local server: dropped
	ptWait(t, func() bool { st := d.Stats(); return st.ToBackend == 2 && st.DroppedNoLocal == 1 })
	want := `
# HELP proxynow_quic_passthrough_flows_active QUIC passthrough flows open now.
# TYPE proxynow_quic_passthrough_flows_active gauge
proxynow_quic_passthrough_flows_active{entrypoint="websecure"} 1
# HELP proxynow_quic_passthrough_hellos_total First flights read: routed to a quic_route, or handed to the local server (no route matched, or not readable).
# TYPE proxynow_quic_passthrough_hellos_total counter
proxynow_quic_passthrough_hellos_total{entrypoint="websecure",result="local"} 0
proxynow_quic_passthrough_hellos_total{entrypoint="websecure",result="routed"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"proxynow_quic_passthrough_flows_active", "proxynow_quic_passthrough_hellos_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m, "proxynow_quic_passthrough_dropped_total"); n != 10 {
		t.Fatalf("%d dropped series, want one per reason", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if mf.GetName() == "proxynow_quic_passthrough_dropped_total" && s.GetLabel()[1].GetValue() == "no_local_server" && s.GetCounter().GetValue() != 1 {
				t.Fatalf("no_local_server = %v, want 1", s.GetCounter().GetValue())
			}
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
	m.Remove(d)
	if n := testutil.CollectAndCount(m); n != 0 {
		t.Fatalf("%d series after Remove", n)
	}
	var nilMetrics *DemuxMetrics
	nilMetrics.Add(d) // a nil DemuxMetrics counts nothing
	nilMetrics.Remove(d)
}
