package quic

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// TestDemuxAccessLog: a passthrough flow ends (idle) with one line naming
// its route, service, backend and bytes both ways.
func TestDemuxAccessLog(t *testing.T) {
	ptLeaks(t)
	var out bytes.Buffer
	log := accesslog.New(&out, accesslog.Options{})
	back, backRoots := ptBackend(t, "backend:", "p.test")
	d, addr := ptDemux(t, []PassRoute{{Name: "p", SNI: []string{"p.test"}, Pool: ptPool(t, back)}},
		DemuxOptions{Entrypoint: "web", AccessLog: accesslog.NewSwitch(log), IdleTimeout: 200 * time.Millisecond})
	if got, err := ptExchange(ptCtx(t), addr, "p.test", backRoots, "hi"); err != nil || got != "backend:hi" {
		t.Fatalf("exchange: %q, %v", got, err)
	}
	ptWait(t, func() bool { return d.Stats().Flows == 0 })
	if err := log.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1: %q", len(lines), out.String())
	}
	var l map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"type": "quic", "entrypoint": "web", "route": "p", "backend": back, "reason": "idle"} {
		if l[k] != v {
			t.Errorf("%s = %v, want %v: %s", k, l[k], v, lines[0])
		}
	}
	if in, _ := l["bytes_in"].(float64); in < 1200 { // at least the client's padded Initial
		t.Errorf("bytes_in %v", l["bytes_in"])
	}
	if o, _ := l["bytes_out"].(float64); o <= 0 {
		t.Errorf("bytes_out %v", l["bytes_out"])
	}
}
