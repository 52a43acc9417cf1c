package tlsmux

import (
	"crypto/tls"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// Metrics are the TLS families. One value serves the whole process (and
// survives reloads): muxes get it through Options.Metrics, and the served
// certificates are read from the CertStore set with SetCertStore at each
// scrape, so a certificate reloaded from disk or added at run time shows
// its new expiry without any call.
type Metrics struct {
	handshakes *prometheus.CounterVec   // entrypoint, route_kind, result, version
	duration   *prometheus.HistogramVec // entrypoint
	expiryDesc *prometheus.Desc
	store      atomic.Pointer[CertStore]
}

// Route kinds and results of proxynow_tls_handshakes_total.
const (
	kindPassthrough = "passthrough"
	kindTerminate   = "terminate"
	kindUnrouted    = "none" // the connection never reached a route

	resultOK       = "ok"
	resultError    = "error"     // a terminating handshake failed
	resultBadHello = "bad_hello" // malformed, oversized, timed out, or not TLS without a plain route
	resultNoRoute  = "no_route"  // a valid ClientHello no route claims
)

// NewMetrics registers the TLS families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_tls_handshakes_total",
			Help: "TLS connections by route kind (passthrough: routed on the ClientHello; terminate: handshake completed or failed here; none: no route), result and TLS version (negotiated when terminated, highest offered when passed through).",
		}, []string{"entrypoint", "route_kind", "result", "version"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "proxynow_tls_handshake_duration_seconds",
			Help:                            "Duration of the TLS handshakes proxynow terminates, from the ClientHello read to the handshake's end.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"entrypoint"}),
		expiryDesc: prometheus.NewDesc("proxynow_tls_certificate_expiry_timestamp_seconds",
			"NotAfter of each served certificate, in Unix seconds.", []string{"certificate"}, nil),
	}
	reg.MustRegister(m.handshakes, m.duration, certCollector{m})
	return m
}

// SetCertStore names the store whose certificates are reported (nil: none).
func (m *Metrics) SetCertStore(s *CertStore) {
	if m != nil {
		m.store.Store(s)
	}
}

// certCollector reports the served certificates' expiry at scrape time.
type certCollector struct{ m *Metrics }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.expiryDesc }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.store.Load()
	if s == nil {
		return
	}
	for name, notAfter := range s.Expiries() {
		ch <- prometheus.MustNewConstMetric(c.m.expiryDesc, prometheus.GaugeValue, float64(notAfter.Unix()), name)
	}
}

// Expiries returns the NotAfter of the certificate served for each source,
// by source name.
func (s *CertStore) Expiries() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.loaded))
	for i, lp := range s.loaded {
		if lp.cert != nil && lp.cert.Leaf != nil {
			out[s.sources[i].Name] = lp.cert.Leaf.NotAfter
		}
	}
	return out
}

// offeredVersion is the highest version a ClientHello offers.
func offeredVersion(h *ClientHello) uint16 {
	best := uint16(0)
	for _, v := range h.SupportedVersions() {
		if v >= tls.VersionTLS10 && v <= tls.VersionTLS13 && v > best {
			best = v
		}
	}
	if best == 0 {
		best = h.LegacyVersion
	}
	return best
}

// count records one connection's outcome; a nil Mux metrics counts nothing.
// A handshake is rare next to what it costs, so the child is looked up
// each time.
func (m *Mux) count(kind, result string, version uint16) {
	if m.metrics != nil {
		m.metrics.handshakes.WithLabelValues(m.entrypoint, kind, result, accesslog.TLSVersion(version)).Inc()
	}
}

func (m *Mux) observeHandshake(d time.Duration) {
	if m.metrics != nil {
		m.metrics.duration.WithLabelValues(m.entrypoint).Observe(d.Seconds())
	}
}
