package l7

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
)

// Metrics are the HTTP families. One value serves the whole process: it is
// registered once and handed to every entrypoint, also across reloads, so
// series keep counting. Labels come from configuration names and small
// fixed sets (method, status class, protocol), never from client input.
type Metrics struct {
	requests    *prometheus.CounterVec   // entrypoint, route, service, method, code, protocol
	duration    *prometheus.HistogramVec // entrypoint, route, service
	size        *prometheus.HistogramVec // entrypoint, route, service
	inFlight    *prometheus.GaugeVec     // entrypoint
	retries     *prometheus.CounterVec   // service
	rateLimited *prometheus.CounterVec   // middleware
}

// durationBuckets are the classic buckets of the request duration, kept
// beside the native histogram for scrapers without native support.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics registers the HTTP families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_http_requests_total",
			Help: "HTTP requests answered, by entrypoint, route, service, method (other for unknown ones), status class and protocol.",
		}, []string{"entrypoint", "route", "service", "method", "code", "protocol"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "proxynow_http_request_duration_seconds",
			Help:                            "Time from a request's arrival until its handler returned.",
			Buckets:                         durationBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"entrypoint", "route", "service"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proxynow_http_response_size_bytes",
			Help:    "Response body bytes sent to clients.",
			Buckets: prometheus.ExponentialBuckets(100, 10, 7),
		}, []string{"entrypoint", "route", "service"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proxynow_http_requests_in_flight",
			Help: "HTTP requests being served now.",
		}, []string{"entrypoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_http_retries_total",
			Help: "Requests sent again to another backend after a failed attempt.",
		}, []string{"service"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_http_rate_limited_requests_total",
			Help: "Requests refused with 429 by a rate_limit or in_flight middleware.",
		}, []string{"middleware"}),
	}
	reg.MustRegister(m.requests, m.duration, m.size, m.inFlight, m.retries, m.rateLimited)
	return m
}

// RateLimited is the counter a rate_limit or in_flight middleware bumps
// when it refuses a request.
func (m *Metrics) RateLimited(middleware string) prometheus.Counter {
	return m.rateLimited.WithLabelValues(middleware)
}

// CountRetries makes p count its retries (nil m: none).
func (p *Proxy) CountRetries(m *Metrics) {
	if m != nil {
		p.lb.retries = m.retries.WithLabelValues(p.service)
	}
}

// Fixed label sets, indexed without allocating.
var (
	methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other"}
	classNames  = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
	protoNames  = [...]string{"HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3", "other"}
)

const nSlots = len(methodNames) * len(classNames) * len(protoNames)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return 9
}

func classIndex(code int) int {
	if code >= 100 && code < 600 {
		return code/100 - 1
	}
	return 5
}

func protoIndex(r *http.Request) int {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return 0
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return 1
	case r.ProtoMajor == 2:
		return 2
	case r.ProtoMajor == 3:
		return 3
	}
	return 4
}

// routeObs holds one route's children, resolved when the observer is
// built; the request counter's children (method × class × protocol) are
// made on first use and kept, so steady-state requests look nothing up.
type routeObs struct {
	route, service string
	duration       prometheus.Observer
	size           prometheus.Observer
	slots          atomic.Pointer[[nSlots]atomic.Pointer[prometheus.Counter]]
	vec            *prometheus.CounterVec
	entrypoint     string
}

func (o *routeObs) counter(method, class, proto int) prometheus.Counter {
	s := o.slots.Load()
	if s == nil {
		s = new([nSlots]atomic.Pointer[prometheus.Counter])
		if !o.slots.CompareAndSwap(nil, s) {
			s = o.slots.Load()
		}
	}
	slot := &s[(method*len(classNames)+class)*len(protoNames)+proto]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := o.vec.WithLabelValues(o.entrypoint, o.route, o.service, methodNames[method], classNames[class], protoNames[proto])
	slot.Store(&c)
	return c
}

func (m *Metrics) routeObs(entrypoint, route, service string) *routeObs {
	return &routeObs{
		route: route, service: service, entrypoint: entrypoint, vec: m.requests,
		duration: m.duration.WithLabelValues(entrypoint, route, service),
		size:     m.size.WithLabelValues(entrypoint, route, service),
	}
}

// routesOf lists the configured routes an observer resolves children for.
func routesOf(routes []*config.HTTPRoute) map[string]string {
	out := make(map[string]string, len(routes))
	for _, r := range routes {
		out[r.Name] = r.Service
	}
	return out
}
