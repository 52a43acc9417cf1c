package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestQUICMetrics sends one HTTP/3 request to the local server and one
// QUIC Initial for a quic_route's name (its backend echoes, so that
// handshake never completes) and reads the demultiplexer's families
// (quic.DemuxMetrics, wired by the server) and the HTTP/3 request count.
func TestQUICMetrics(t *testing.T) {
	be := udpEchoBackend(t)
	certFile, keyFile, pool := writeCert(t)
	cfg := parse(t, fmt.Sprintf(`
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "all" {
  entrypoints = ["web"]
  service     = "hello"
}
quic_route "pt" {
  entrypoints = ["web"]
  sni         = ["pt.test"]
  service     = "echo"
}
service "hello" {
  respond {
    body = "hello"
  }
}
service "echo" {
  backend %q {}
}
`, certFile, keyFile, be))
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // also after a failure; Close is idempotent
	addr := s.Addr("web").String()
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "t.test"}}
	defer h3.Close()
	resp, err := (&http.Client{Transport: h3, Timeout: 20 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := quicgo.DialAddr(ctx, addr, &tls.Config{ServerName: "pt.test", NextProtos: []string{"x"}}, nil); err == nil {
		c.CloseWithError(0, "")
		t.Fatal("a handshake with an echo backend succeeded")
	}

	fams, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.Metric {
			key := f.GetName()
			for _, l := range m.Label {
				if l.GetName() != "entrypoint" {
					key += "/" + l.GetValue()
				}
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for _, k := range []string{"proxynow_quic_passthrough_hellos_total/routed", "proxynow_quic_passthrough_hellos_total/local",
		"proxynow_quic_passthrough_datagrams_total/backend", "proxynow_quic_passthrough_datagrams_total/local"} {
		if got[k] < 1 {
			t.Errorf("%s = %v, want at least 1", k, got[k])
		}
	}
	if _, ok := got["proxynow_quic_passthrough_dropped_total/flows_full"]; !ok {
		t.Error("proxynow_quic_passthrough_dropped_total{reason=flows_full} missing")
	}
	// Label values in label-name order: code, method, protocol, route, service.
	if v := got["proxynow_http_requests_total/2xx/GET/HTTP/3/all/hello"]; v != 1 {
		t.Errorf("HTTP/3 requests counted %v, want 1", v)
	}
	s.Close()
	fams, err = s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "proxynow_quic_passthrough_flows_active" {
			t.Error("a closed server's demultiplexer is still reported")
		}
	}
}
