package l7

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	connsClosed *prometheus.CounterVec   // entrypoint, protocol, reason
	guard       *prometheus.CounterVec   // entrypoint
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
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_http_connections_closed_total",
			Help: "HTTP/2 and HTTP/3 connections the proxy closed to defend itself, by reason (rapid_reset: more streams cancelled while served than the budget allows).",
		}, []string{"entrypoint", "protocol", "reason"}),
		guard: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxynow_http_guard_rejections_total",
			Help: "HTTP/1 connections the request hygiene guard answered 400 and closed (malformed or ambiguous requests; they reach no route).",
		}, []string{"entrypoint"}),
	}
	reg.MustRegister(m.requests, m.duration, m.size, m.inFlight, m.retries, m.rateLimited, m.connsClosed, m.guard)
	return m
}

// RateLimited is the counter a rate_limit or in_flight middleware bumps
// when it refuses a request.
func (m *Metrics) RateLimited(middleware string) prometheus.Counter {
	return m.rateLimited.WithLabelValues(middleware)
}

// RapidResetCloses is the counter of an entrypoint's connections of
// protocol ("HTTP/2" or "HTTP/3", as proxynow_http_requests_total names
// them) closed for overdrawing their rapid-reset budget. It is made, at
// zero, when called (nil m: nil, which counts nothing).
func (m *Metrics) RapidResetCloses(entrypoint, protocol string) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.connsClosed.WithLabelValues(entrypoint, protocol, "rapid_reset")
}

// GuardRejections is the counter of an entrypoint's HTTP/1 connections
// the request hygiene guard rejected, made at zero when called (nil m:
// nil). Every server of the entrypoint, before and after a reload, counts
// into it.
func (m *Metrics) GuardRejections(entrypoint string) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.guard.WithLabelValues(entrypoint)
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

// routeObs is one route's metrics. Its series are made on the route's
// first request, not when the configuration is compiled: a route never
// asked for costs no children (10,000 routes made 20,000 histogram
// children, 26 MB, up front). Steady-state requests look nothing up, and
// touch one routeObs (the Observer holds them in one array) and the
// children.
type routeObs struct {
	route, service, entrypoint string
	m                          *Metrics    // nil: no metrics
	ready                      atomic.Bool // duration and size are set
	mu                         sync.Mutex  // makes series and counters
	duration                   prometheus.Observer
	size                       prometheus.Observer
	// keys[i] is the slot (plus one; 0: free) of counters[i]. Slots are
	// taken in order under mu and counters[i] is written before keys[i],
	// so a reader that sees a key sees its counter, and the first free key
	// ends a search.
	keys     [hotSlots]atomic.Uint32
	counters [hotSlots]prometheus.Counter
	more     atomic.Pointer[[nSlots]atomic.Pointer[prometheus.Counter]]
}

// hotSlots is how many request counters (method × class × protocol) a
// route keeps inline. A route sees few combinations (GET, 2xx, one
// protocol); the table of every combination (nSlots pointers, 2.4 KB) is
// made only for a route that sees more.
const hotSlots = 4

// observe counts a request of the route and its duration and size,
// making the route's series on its first request.
func (o *routeObs) observe(method, class, proto int, seconds float64, bytes int64) {
	if !o.ready.Load() {
		o.init()
	}
	o.counter(method, class, proto).Inc()
	o.duration.Observe(seconds)
	o.size.Observe(float64(bytes))
}

func (o *routeObs) init() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ready.Load() {
		return
	}
	o.duration = o.m.duration.WithLabelValues(o.entrypoint, o.route, o.service)
	o.size = o.m.size.WithLabelValues(o.entrypoint, o.route, o.service)
	o.ready.Store(true)
}

func (o *routeObs) counter(method, class, proto int) prometheus.Counter {
	slot := (method*len(classNames)+class)*len(protoNames) + proto
	if c, _ := o.find(slot); c != nil {
		return c
	}
	return o.addCounter(slot)
}

// find is the counter of slot, if made; else the first free inline place
// (-1: none).
func (o *routeObs) find(slot int) (c prometheus.Counter, free int) {
	key := uint32(slot + 1)
	for i := range o.keys {
		switch o.keys[i].Load() {
		case key:
			return o.counters[i], -1
		case 0:
			return nil, i
		}
	}
	if more := o.more.Load(); more != nil {
		if c := more[slot].Load(); c != nil {
			return *c, -1
		}
	}
	return nil, -1
}

// addCounter makes the counter of slot and files it.
func (o *routeObs) addCounter(slot int) prometheus.Counter {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, free := o.find(slot) // another request may have made it meanwhile
	if c != nil {
		return c
	}
	key := uint32(slot + 1)
	c = o.m.requests.WithLabelValues(o.entrypoint, o.route, o.service, methodNames[slot/(len(classNames)*len(protoNames))],
		classNames[slot/len(protoNames)%len(classNames)], protoNames[slot%len(protoNames)])
	if free >= 0 {
		o.counters[free] = c
		o.keys[free].Store(key)
		return c
	}
	more := o.more.Load()
	if more == nil {
		more = new([nSlots]atomic.Pointer[prometheus.Counter])
		o.more.Store(more)
	}
	more[slot].Store(&c)
	return c
}
