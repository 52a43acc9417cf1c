package l7

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
	"github.com/proxynow/proxynow/upstream/accesslog"
)

// Observer wraps an entrypoint's handler (the Entry) to count, time and
// log every request, matched or not. Per request it takes a pooled
// recorder that also carries the request's reqInfo, so observing costs no
// allocation beyond what Entry already made; the user basic_auth
// authenticates lands in the reqInfo too (reqInfo.Value).
type Observer struct {
	next       http.Handler
	entrypoint string
	log        *accesslog.Switch
	inFlight   prometheus.Gauge
	routes     map[string]*routeObs // into byIndex
	// byIndex are the metrics of the routes the Observer was built from,
	// in their order, the order the Router numbers them in (reqInfo's
	// routeIndex); one array, so finding a route's costs no pointer hop.
	byIndex   []routeObs
	unmatched *routeObs
	metrics   bool
}

// NewObserver wraps next, the handler of entrypoint whose http_routes are
// routes, in the order they were given to the entrypoint's Router.
// m nil: no metrics; log nil or holding no Writer: no access log (a reload
// may swap one in).
func NewObserver(next http.Handler, entrypoint string, routes []*config.HTTPRoute, m *Metrics, log *accesslog.Switch) *Observer {
	o := &Observer{next: next, entrypoint: entrypoint, log: log, routes: make(map[string]*routeObs, len(routes)),
		byIndex: make([]routeObs, len(routes)), metrics: m != nil}
	for i, r := range routes {
		ro := &o.byIndex[i]
		ro.route, ro.service, ro.entrypoint, ro.m = r.Name, r.Service, entrypoint, m
		if o.routes[r.Name] == nil {
			o.routes[r.Name] = ro
		}
	}
	// Requests no route took (404, CONNECT): route and service "".
	o.unmatched = &routeObs{entrypoint: entrypoint, m: m}
	if m != nil {
		o.inFlight = m.inFlight.WithLabelValues(entrypoint)
	}
	return o
}

// routeObs is the metrics of the route the request went to (ri.route,
// the route at ri.routeIndex), or those of unmatched requests.
func (o *Observer) routeObs(ri *reqInfo) *routeObs {
	if ri.route == "" {
		return o.unmatched
	}
	if i := int(ri.routeIndex); i >= 0 && i < len(o.byIndex) {
		if ro := &o.byIndex[i]; ro.route == ri.route {
			return ro
		}
	}
	// A Router built from other routes than the Observer's.
	if ro := o.routes[ri.route]; ro != nil {
		return ro
	}
	return o.unmatched
}

// recorder is the ResponseWriter handed down: it notes the status and the
// body bytes, and holds the request's reqInfo (see newInfo).
type recorder struct {
	http.ResponseWriter
	ri     *reqInfo // set by Entry (newInfo)
	status int
	bytes  int64
}

// noInfo stands in for the reqInfo of a request that reached no Entry;
// nothing writes it.
var noInfo reqInfo

// The recorder with the optional interfaces of each middleware.Kind: a
// handler sees those of the server's writer, no more, no fewer.
type (
	recorderNotify struct {
		recorder
		middleware.NotifyExtra
	}
	recorderH2 struct {
		recorder
		middleware.H2Extra
	}
	recorderH3 struct {
		recorder
		middleware.H3Extra
	}
)

// recorders pools the recorders of each Kind.
var recorders = [...]sync.Pool{
	middleware.KindPlain:  {New: func() any { return new(recorder) }},
	middleware.KindNotify: {New: func() any { return new(recorderNotify) }},
	middleware.KindH2:     {New: func() any { return new(recorderH2) }},
	middleware.KindH3:     {New: func() any { return new(recorderH3) }},
}

// getRecorder is a pooled recorder over w: the recorder, and the writer
// to hand down (the recorder, of w's Kind); putRecorder returns it.
func getRecorder(w http.ResponseWriter) (*recorder, http.ResponseWriter) {
	k := middleware.KindOf(w)
	switch v := recorders[k].Get().(type) {
	case *recorderNotify:
		v.ResponseWriter, v.NotifyExtra.In = w, w
		return &v.recorder, v
	case *recorderH2:
		v.ResponseWriter, v.H2Extra.In = w, w
		return &v.recorder, v
	case *recorderH3:
		v.ResponseWriter, v.H3Extra.In = w, w
		return &v.recorder, v
	case *recorder:
		v.ResponseWriter = w
		return v, v
	default:
		panic("l7: recorder pool of the wrong type")
	}
}

func putRecorder(rw http.ResponseWriter) {
	switch v := rw.(type) {
	case *recorderNotify:
		*v = recorderNotify{}
		recorders[middleware.KindNotify].Put(v)
	case *recorderH2:
		*v = recorderH2{}
		recorders[middleware.KindH2].Put(v)
	case *recorderH3:
		*v = recorderH3{}
		recorders[middleware.KindH3].Put(v)
	case *recorder:
		*v = recorder{}
		recorders[middleware.KindPlain].Put(v)
	}
}

// recorderOf is the recorder in w, if w is one.
func recorderOf(w http.ResponseWriter) *recorder {
	switch v := w.(type) {
	case *recorderH2:
		return &v.recorder
	case *recorder:
		return v
	case *recorderH3:
		return &v.recorder
	case *recorderNotify:
		return &v.recorder
	}
	return nil
}

// newInfo is the reqInfo of a request, wrapping its context; when w is the
// Observer's recorder, the recorder keeps a pointer to it for the metrics
// and the access log. It is not part of the pooled recorder: the request's
// context and its X-Request-Id value must outlive the handler (HTTP/2
// writes headers on another goroutine; context.AfterFunc hooks).
//
// Over the HTTP/1 server it is the one allocated with the request (zero
// until now), when the context is still the server's own.
func newInfo(w http.ResponseWriter, ctx context.Context, entrypoint string) *reqInfo {
	var ri *reqInfo
	if hc, ok := ctx.(*h1ctx); ok {
		ri = hc.takeInfo()
	}
	if ri == nil {
		ri = new(reqInfo)
	}
	ri.Context, ri.entrypoint = ctx, entrypoint
	if rec := recorderOf(w); rec != nil {
		rec.ri = ri
	}
	return ri
}

func (w *recorder) WriteHeader(code int) {
	// Interim 1xx responses (100 Continue, 103 Early Hints) are not the
	// answer; 101 is.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush keeps streaming responses (SSE, gRPC) streaming.
func (w *recorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack serves upgrades (WebSocket) and records them as 101.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer (read and
// write deadlines, full duplex).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusClientClosed is nginx's 499: the client went away before an answer.
const statusClientClosed = 499

func (o *Observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 3 {
		// HTTP/3 runs each request on a new goroutine (HTTP/2's grows its
		// stack in the h2 server's handler, with fewer frames on it).
		growStack()
	}
	// Only the access log needs the wall clock; the duration is the
	// monotonic clock's (half the cost of time.Now).
	var start time.Time
	var t0 int64
	wall := o.log.Load() != nil
	if wall {
		start = time.Now()
	} else {
		t0 = monoNow()
	}
	rec, rw := getRecorder(w)
	if o.inFlight != nil {
		o.inFlight.Inc()
	}
	o.next.ServeHTTP(rw, r)
	if o.inFlight != nil {
		o.inFlight.Dec()
	}
	var elapsed time.Duration
	if wall {
		elapsed = time.Since(start)
	} else {
		elapsed = time.Duration(monoNow() - t0)
	}
	status := rec.status
	if status == 0 {
		if r.Context().Err() != nil {
			status = statusClientClosed
		} else {
			status = http.StatusOK // net/http sends 200 for a handler that wrote nothing
		}
	}
	if rec.ri == nil {
		rec.ri = &noInfo // next was not an Entry
	}
	ro := o.routeObs(rec.ri)
	if o.metrics {
		ro.observe(methodIndex(r.Method), classIndex(status), protoIndex(r), elapsed.Seconds(), rec.bytes)
	}
	if o.log.Load() != nil {
		if !wall {
			start = time.Now().Add(-elapsed) // a reload turned the log on meanwhile
		}
		o.logRequest(r, rec, ro, start, elapsed, status)
	}
	putRecorder(rw)
}

func (o *Observer) logRequest(r *http.Request, rec *recorder, ro *routeObs, start time.Time, elapsed time.Duration, status int) {
	e := accesslog.HTTP{
		Time: start, Client: rec.ri.client, Method: r.Method, Host: r.Host, Path: r.URL.Path, URI: r.RequestURI,
		Proto: r.Proto, Status: status, Bytes: rec.bytes, Duration: elapsed, Entrypoint: o.entrypoint,
		Route: ro.route, Service: ro.service, Backend: rec.ri.backend, RequestID: rec.ri.requestID,
		User: rec.ri.user,
	}
	if !e.Client.IsValid() {
		e.Client = ClientIP(r)
	}
	if r.TLS != nil {
		e.TLSVersion, e.SNI = r.TLS.Version, r.TLS.ServerName
	}
	if o.log.Combined() {
		e.Referer, e.UserAgent = r.Header.Get("Referer"), r.Header.Get("User-Agent")
	}
	o.log.LogHTTP(&e)
}

// SetUser and User make reqInfo a middleware.UserSlot.
func (ri *reqInfo) SetUser(name string) { ri.user = name }
func (ri *reqInfo) User() string        { return ri.user }

var _ middleware.UserSlot = (*reqInfo)(nil)
