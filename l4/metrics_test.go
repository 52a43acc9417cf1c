package l4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// eventually polls cond until it holds or 5s pass: counters move when
// connections end, after the client saw the close.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPMetricsAndAccessLog(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var out bytes.Buffer
	log := accesslog.New(&out, accesslog.Options{})
	be := backend(t, echo)
	s := &TCPServer{Entrypoint: "ep", MaxConnections: 1, Metrics: m.Entrypoint("ep"),
		ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Timeout: time.Second},
		Handler:       &Proxy{Route: "r", Service: "svc", Pool: pool(t, be), Metrics: m.Route("ep", "r", "svc"), AccessLog: accesslog.NewSwitch(log)}}
	addr := startTCP(t, s)

	c := dial(t, addr)
	c.Write(header(t, 2, "203.0.113.7:1000", "198.51.100.1:443"))
	c.Write([]byte("hello"))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	// The cap is one: a second connection is rejected at once (the reset
	// may already come during the dial).
	if rc, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		expectClosed(t, rc, 2*time.Second)
		rc.Close()
	}
	eventually(t, "rejected", func() bool { return testutil.ToFloat64(m.rejected.WithLabelValues("ep", "max_connections")) == 1 })
	c.CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
	// Bytes are counted as they move, before the connection ends: wait
	// for it to end too, or the next one meets max_connections instead of
	// the PROXY check.
	eventually(t, "connection counted as ended", func() bool {
		return testutil.ToFloat64(m.sent.WithLabelValues("ep", "r", "svc")) == 5 &&
			s.Active() == 0 // the slot max_connections checks
	})
	// The first connection must be gone, or the cap refuses the next one.
	eventually(t, "first connection done", func() bool { return s.Active() == 0 })
	// A malformed header from the trusted peer is refused.
	bad := dial(t, addr)
	bad.Write([]byte("PROXY TCP9 nonsense\r\n"))
	expectClosed(t, bad, 2*time.Second)

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"accepted", m.accepted.WithLabelValues("ep"), 3},
		{"rejected max_connections", m.rejected.WithLabelValues("ep", "max_connections"), 1},
		{"rejected proxy_header", m.rejected.WithLabelValues("ep", "proxy_header"), 1},
		{"PROXY accepted", m.proxyHeaders.WithLabelValues("ep", "accepted"), 1},
		{"PROXY refused", m.proxyHeaders.WithLabelValues("ep", "refused"), 1},
		{"route connections", m.routeConns.WithLabelValues("ep", "r", "svc"), 1},
		{"received bytes", m.received.WithLabelValues("ep", "r", "svc"), 5},
		{"sent bytes", m.sent.WithLabelValues("ep", "r", "svc"), 5},
	}
	eventually(t, "active back to 0", func() bool { return testutil.ToFloat64(m.active.WithLabelValues("ep")) == 0 })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
	if err := log.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{`"type":"tcp"`, `"client":"203.0.113.7:1000"`, `"entrypoint":"ep"`, `"route":"r"`,
		`"service":"svc"`, `"backend":"` + be + `"`, `"bytes_in":5`, `"bytes_out":5`, `"reason":"eof"`} {
		if !bytes.Contains([]byte(line), []byte(want)) {
			t.Errorf("access log line lacks %s: %s", want, line)
		}
	}
}

func TestUntrustedProxyHeaderCounted(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	be := backend(t, echo)
	s := &TCPServer{Entrypoint: "ep", Metrics: m.Entrypoint("ep"), Handler: &Proxy{Pool: pool(t, be)},
		ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	addr := startTCP(t, s)
	c := dial(t, addr)
	c.Write(header(t, 1, "203.0.113.7:1", "198.51.100.1:2"))
	expectClosed(t, c, 2*time.Second)
	eventually(t, "refused header counted", func() bool {
		return testutil.ToFloat64(m.proxyHeaders.WithLabelValues("ep", "refused")) == 1
	})
}

func TestUDPMetricsAndAccessLog(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var out bytes.Buffer
	log := accesslog.New(&out, accesslog.Options{})
	be := udpEcho(t, same)
	s := &UDPServer{Entrypoint: "dns", Route: "r", Service: "svc", Pool: pool(t, be), IdleTimeout: 100 * time.Millisecond,
		MaxFlows: 1, Metrics: m.UDP("dns", "r", "svc"), AccessLog: accesslog.NewSwitch(log)}
	addr := startUDP(t, s)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	for range 3 {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A second client while the table is full (max_flows = 1) is dropped.
	c2, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("x"))
	labels := []string{"dns", "r", "svc"}
	eventually(t, "flow expired", func() bool {
		return testutil.ToFloat64(m.flowsExpired.WithLabelValues(labels...)) == 1 &&
			testutil.ToFloat64(m.dgramsDrop.WithLabelValues("dns", "max_flows")) == 1
	})
	if v := testutil.ToFloat64(m.flowsActive.WithLabelValues(labels...)); v != 0 {
		t.Errorf("flows active %v, want 0", v)
	}
	if v := testutil.ToFloat64(m.flowsCreated.WithLabelValues(labels...)); v != 1 {
		t.Errorf("flows created %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.dgramsIn.WithLabelValues(labels...)); v != 4 {
		t.Errorf("datagrams received %v, want 4 (3 + the dropped one)", v)
	}
	if v := testutil.ToFloat64(m.dgramsOut.WithLabelValues(labels...)); v != 3 {
		t.Errorf("datagrams sent %v, want 3", v)
	}
	if err := log.CloseWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"udp"`, `"route":"r"`, `"bytes_in":12`, `"bytes_out":12`, `"reason":"idle"`} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("flow line lacks %s: %s", want, out.String())
		}
	}
}

func TestNilMetricsCountNothing(t *testing.T) {
	var m *Metrics
	m.Entrypoint("x").accept()
	m.Route("x", "r", "s").end(time.Second)
	m.Route("x", "r", "s").moved(true, 3)
	m.UDP("x", "r", "s").drop(dropFull)
}

// TestTCPBytesCountedWhileOpen: a long connection's bytes show before it
// ends, at the idle-timeout checks.
func TestTCPBytesCountedWhileOpen(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	be := backend(t, echo)
	addr := startTCP(t, &TCPServer{Handler: &Proxy{Pool: pool(t, be), Idle: time.Second, Metrics: m.Route("ep", "r", "s")}})
	c := dial(t, addr)
	c.Write([]byte("hello"))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bytes counted on an open connection", func() bool {
		return testutil.ToFloat64(m.received.WithLabelValues("ep", "r", "s")) == 5 &&
			testutil.ToFloat64(m.sent.WithLabelValues("ep", "r", "s")) == 5
	})
	if n := testutil.ToFloat64(m.routeConns.WithLabelValues("ep", "r", "s")); n != 1 {
		t.Fatalf("route connections %v, want 1", n)
	}
	c.Close()
}

// TestUntrustedProxyHeaderRefusedOnRead: a handler that is not a tunnel
// (the HTTP server, a TLS handshake) reads the connection with Conn.Read
// or io.Copy (Conn.WriteTo): a PROXY header from a peer that is not
// trusted fails that read and is counted as refused, as on a tunnel, even
// when its signature arrives in pieces; other bytes, even a partial
// signature, are read unchanged.
func TestUntrustedProxyHeaderRefusedOnRead(t *testing.T) {
	type result struct {
		got []byte
		err error
	}
	for _, tc := range []struct {
		name    string
		pieces  [][]byte
		copyTo  bool // io.Copy instead of io.ReadAll
		refused bool
	}{
		{name: "v1", pieces: [][]byte{header(t, 1, "203.0.113.7:1", "198.51.100.1:2")}, refused: true},
		{name: "v2 split", pieces: [][]byte{[]byte("\r\n\r\n\x00"), header(t, 2, "203.0.113.7:1", "198.51.100.1:2")[5:]}, refused: true},
		{name: "v1 by WriteTo", pieces: [][]byte{header(t, 1, "203.0.113.7:1", "198.51.100.1:2")}, copyTo: true, refused: true},
		{name: "HTTP", pieces: [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n")}},
		{name: "partial signature", pieces: [][]byte{[]byte("PROX"), []byte("IMA hello")}},
		{name: "partial signature by WriteTo", pieces: [][]byte{[]byte("\r\n"), []byte("x")}, copyTo: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			results := make(chan result, 1)
			s := &TCPServer{Entrypoint: "ep", Metrics: m.Entrypoint("ep"),
				ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
				Handler: HandlerFunc(func(_ context.Context, c *Conn) {
					defer c.Close()
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					var r result
					if tc.copyTo {
						var b bytes.Buffer
						_, r.err = io.Copy(&b, c)
						r.got = b.Bytes()
					} else {
						r.got, r.err = io.ReadAll(c)
					}
					results <- r
				})}
			addr := startTCP(t, s)
			c := dial(t, addr)
			var sent []byte
			for i, p := range tc.pieces {
				if i > 0 {
					time.Sleep(20 * time.Millisecond) // a second segment, most likely
				}
				c.Write(p)
				sent = append(sent, p...)
			}
			c.CloseWrite()
			var r result
			select {
			case r = <-results:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's read did not return")
			}
			refused := testutil.ToFloat64(m.proxyHeaders.WithLabelValues("ep", "refused"))
			if tc.refused {
				if !errors.Is(r.err, ErrProxyHeaderUntrusted) || len(r.got) > 0 || refused != 1 {
					t.Errorf("read %q, %v; refused %v; want ErrProxyHeaderUntrusted, nothing read, 1 refused", r.got, r.err, refused)
				}
				return
			}
			if r.err != nil || !bytes.Equal(r.got, sent) || refused != 0 {
				t.Errorf("read %q, %v; refused %v; want %q, no error, none refused", r.got, r.err, refused, sent)
			}
		})
	}
}
