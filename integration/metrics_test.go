//go:build linux

package integration

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics in the text format and parses it.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	code, _, body := adminGet(t, admin, "/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// series finds the metric of family name whose labels are exactly labels.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("family %s missing", name)
	}
	var have []string
	for _, m := range f.Metric {
		got := labelsOf(m)
		if len(got) == len(labels) {
			same := true
			for k, v := range labels {
				if got[k] != v {
					same = false
				}
			}
			if same {
				return m
			}
		}
		have = append(have, labelString(m))
	}
	sort.Strings(have)
	t.Fatalf("%s%v not found; have:\n%s", name, labels, strings.Join(have, "\n"))
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.Label {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.Label {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := value(series(t, fams, name, labels)); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetricsAfterMixedTraffic(t *testing.T) {
	m := startMixed(t, "json")
	// Connection and flow counters move when they end; the access log says
	// when that happened (the UDP flow ends after its 1s idle timeout).
	ended := accessLines(t, m.accessLog, m.tcpConns+m.ptConns+1, func(l map[string]any) bool {
		return l["type"] == "tcp" || l["type"] == "udp"
	})
	if len(ended) < m.tcpConns+m.ptConns+1 {
		t.Fatalf("only %d connection/flow lines in the access log, want %d", len(ended), m.tcpConns+m.ptConns+1)
	}
	// A bare CR: the request guard answers 400 before any route.
	bad := dialTCP(t, m.p.addr("web"))
	bad.Write([]byte("GET / HTTP/1.1\rHost: x\r\n\r\n"))
	if resp, _ := readGreeting(bad, len("HTTP/1.1 400")); resp != "HTTP/1.1 400" {
		t.Fatalf("malformed request answered %q, want a 400", resp)
	}
	bad.Close()
	admin := m.p.adminAddr()
	fams := scrape(t, admin)
	wantValue(t, fams, "proxynow_http_guard_rejections_total", map[string]string{"entrypoint": "web"}, 1)
	wantValue(t, fams, "proxynow_http_guard_rejections_total", map[string]string{"entrypoint": "tls"}, 0)

	type L = map[string]string
	hr := "proxynow_http_requests_total"
	wantValue(t, fams, hr, L{"entrypoint": "web", "route": "api", "service": "api", "method": "GET", "code": "2xx", "protocol": "HTTP/1.1"}, float64(m.h1))
	wantValue(t, fams, hr, L{"entrypoint": "web", "route": "api", "service": "api", "method": "POST", "code": "2xx", "protocol": "HTTP/2"}, float64(m.h2c))
	wantValue(t, fams, hr, L{"entrypoint": "web", "route": "", "service": "", "method": "GET", "code": "4xx", "protocol": "HTTP/1.1"}, float64(m.notFound))
	wantValue(t, fams, hr, L{"entrypoint": "tls", "route": "api", "service": "api", "method": "GET", "code": "2xx", "protocol": "HTTP/2"}, float64(m.h2tls))
	wantValue(t, fams, hr, L{"entrypoint": "tls", "route": "api", "service": "api", "method": "GET", "code": "2xx", "protocol": "HTTP/3"}, float64(m.h3))
	wantValue(t, fams, "proxynow_http_request_duration_seconds", L{"entrypoint": "web", "route": "api", "service": "api"}, float64(m.h1+m.h2c))
	wantValue(t, fams, "proxynow_http_response_size_bytes", L{"entrypoint": "tls", "route": "api", "service": "api"}, float64(m.h2tls+m.h3))
	wantValue(t, fams, "proxynow_http_requests_in_flight", L{"entrypoint": "web"}, 0)
	wantValue(t, fams, "proxynow_http_retries_total", L{"service": "api"}, 0)

	wantValue(t, fams, "proxynow_l4_connections_accepted_total", L{"entrypoint": "tcp"}, float64(m.tcpConns))
	wantValue(t, fams, "proxynow_l4_connections_active", L{"entrypoint": "tcp"}, 0)
	echo := L{"entrypoint": "tcp", "route": "echo", "service": "echo"}
	wantValue(t, fams, "proxynow_l4_route_connections_total", echo, float64(m.tcpConns))
	wantValue(t, fams, "proxynow_l4_received_bytes_total", echo, float64(m.tcpConns*len("tcp-0")))
	wantValue(t, fams, "proxynow_l4_sent_bytes_total", echo, float64(m.tcpConns*len("tcp-0")))
	wantValue(t, fams, "proxynow_l4_connection_duration_seconds", echo, float64(m.tcpConns))
	wantValue(t, fams, "proxynow_l4_route_connections_total", L{"entrypoint": "tls", "route": "pt", "service": "pt"}, float64(m.ptConns))
	wantValue(t, fams, "proxynow_l4_connections_rejected_total", L{"entrypoint": "tcp", "reason": "max_connections"}, 0)

	dns := L{"entrypoint": "udp", "route": "dns", "service": "dns"}
	wantValue(t, fams, "proxynow_l4_udp_flows_created_total", dns, 1)
	wantValue(t, fams, "proxynow_l4_udp_flows_expired_total", dns, 1)
	wantValue(t, fams, "proxynow_l4_udp_flows_active", dns, 0)
	wantValue(t, fams, "proxynow_l4_udp_datagrams_received_total", dns, float64(m.udpDgrams))
	wantValue(t, fams, "proxynow_l4_udp_datagrams_sent_total", dns, float64(m.udpDgrams))
	wantValue(t, fams, "proxynow_l4_udp_datagrams_dropped_total", L{"entrypoint": "udp", "reason": "max_flows"}, 0)

	wantValue(t, fams, "proxynow_tls_handshakes_total", L{"entrypoint": "tls", "route_kind": "passthrough", "result": "ok", "version": "1.3"}, float64(m.ptConns))
	if v := value(series(t, fams, "proxynow_tls_handshakes_total", L{"entrypoint": "tls", "route_kind": "terminate", "result": "ok", "version": "1.3"})); v < 1 {
		t.Errorf("terminated handshakes = %v, want at least 1", v)
	}
	if v := value(series(t, fams, "proxynow_tls_handshake_duration_seconds", L{"entrypoint": "tls"})); v < 1 {
		t.Errorf("handshake duration count = %v, want at least 1", v)
	}
	exp := value(series(t, fams, "proxynow_tls_certificate_expiry_timestamp_seconds", L{"certificate": "web"}))
	if d := time.Until(time.Unix(int64(exp), 0)); d < 22*time.Hour || d > 25*time.Hour {
		t.Errorf("certificate expiry in %v, want about 24h (the test CA's validity)", d)
	}

	for _, svc := range []string{"api", "echo", "dns", "pt"} {
		f := fams["proxynow_upstream_backend_up"]
		found := false
		for _, mm := range f.GetMetric() {
			if labelsOf(mm)["service"] == svc {
				found = true
				if mm.Gauge.GetValue() != 1 {
					t.Errorf("backend of %s: up = %v, want 1", svc, mm.Gauge.GetValue())
				}
			}
		}
		if !found {
			t.Errorf("no proxynow_upstream_backend_up series for service %s", svc)
		}
	}
	if fams["proxynow_upstream_backend_in_flight"] == nil {
		t.Error("proxynow_upstream_backend_in_flight missing")
	}

	info := series(t, fams, "proxynow_build_info", L{"version": labelOf(fams, "proxynow_build_info", "version"), "goversion": runtime.Version()})
	if value(info) != 1 {
		t.Errorf("build info = %v, want 1", value(info))
	}
	for _, f := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_open_fds", "process_resident_memory_bytes"} {
		if fams[f] == nil {
			t.Errorf("runtime/process family %s missing", f)
		}
	}
	if v := value(series(t, fams, "proxynow_accesslog_lines_total", L{"result": "written"})); v < float64(m.h1+m.h2c+m.notFound+m.h2tls+m.h3) {
		t.Errorf("access log lines written = %v, want at least one per request", v)
	}
	wantValue(t, fams, "proxynow_accesslog_lines_total", L{"result": "dropped"}, 0)

	t.Run("native histogram over protobuf", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
		req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
		resp, err := (&http.Client{Timeout: ioTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
		for {
			var f dto.MetricFamily
			if err := dec.Decode(&f); err == io.EOF {
				t.Fatal("proxynow_http_request_duration_seconds not in the protobuf exposition")
			} else if err != nil {
				t.Fatal(err)
			}
			if f.GetName() != "proxynow_http_request_duration_seconds" {
				continue
			}
			for _, mm := range f.Metric {
				h := mm.GetHistogram()
				if h.GetSampleCount() > 0 {
					if h.Schema == nil || len(h.PositiveSpan) == 0 {
						t.Errorf("%s: no native buckets (schema %v, spans %d)", labelString(mm), h.Schema, len(h.PositiveSpan))
					}
					if len(h.Bucket) == 0 {
						t.Errorf("%s: no classic buckets", labelString(mm))
					}
				}
			}
			return
		}
	})
}

func labelOf(fams map[string]*dto.MetricFamily, name, label string) string {
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.Label {
			if lp.GetName() == label {
				return lp.GetValue()
			}
		}
	}
	return ""
}
