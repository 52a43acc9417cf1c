package l7

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// Proxy is the handler of a service with backends: a reverse proxy whose
// balancer picks a backend per attempt, retries what is safe to retry, and
// consults the service's circuit breaker.
//
// It does what net/http/httputil.ReverseProxy does with a Rewrite hook —
// hop-by-hop and forwarding headers stripped before proxynow adds its own,
// 101 upgrades tunnelled, trailers forwarded, immediate flushing of event
// streams and of bodies of unknown length — but builds the outbound
// request directly instead of cloning the inbound one (see outbound.go).
type Proxy struct {
	service       string
	lb            *balancer
	passHost      bool
	flushInterval time.Duration
	log           *slog.Logger
}

// NewProxy builds a service's handler once, at load time. pool must be the
// service's pool.
func NewProxy(svc *config.Service, pool *upstream.Pool, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Proxy{
		service:       svc.Name,
		lb:            newBalancer(svc, pool, logger),
		passHost:      svc.HTTP.PassHost,
		flushInterval: svc.HTTP.FlushInterval,
		log:           logger,
	}
}

// CloseIdleConnections closes the pooled keep-alive connections (reload,
// shutdown).
func (p *Proxy) CloseIdleConnections() { p.lb.closeIdle() }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	upType := upgradeType(r.Header)
	if !isPrint(upType) {
		p.fail(w, r, ri, fmt.Errorf("client tried to switch to invalid protocol %q", upType))
		return
	}
	if strings.EqualFold(upType, "h2c") {
		// Only a client's own HTTP/1.1 Upgrade (WebSocket) is tunnelled;
		// an h2c upgrade would switch the backend connection to a protocol
		// the client never negotiated with proxynow.
		upType = ""
	}

	o := outbounds.Get().(*outbound)
	out := &o.req
	*out = *r // a shallow copy: the context, method, proto, trailer map...
	o.url = *r.URL
	o.url.RawQuery = cleanQuery(o.url.RawQuery)
	// The balancer fills in the backend per attempt.
	o.url.Scheme, o.url.Host = "http", "backend.invalid"
	out.URL = &o.url
	out.Header = o.buildHeader(r, ri, upType)
	out.RequestURI = ""
	out.Close = false
	if !p.passHost {
		out.Host = ""
	}
	if r.ContentLength == 0 {
		out.Body = nil // golang.org/issue/16036: lets the transport retry a dead keep-alive connection
	} else if r.Body != nil {
		// The transport closes a request body when a try fails; the
		// inbound body must stay readable for the next try, and its
		// Close (which may wait for the client) is the server's business.
		o.body.rc = r.Body
		out.Body = &o.body
		// A transport goroutine may read the body after this handler
		// returned (golang.org/issue/46866): reads then fail instead.
		defer o.body.closed.Store(true)
	}

	var tr *trace1xx
	if ri != nil {
		ri.w1xx = w
		defer func() { ri.w1xx = nil }()
	}
	if out.Body != nil || upType != "" || ri == nil {
		// Bound for net/http's Transport (h1Transport.fast): its 1xx
		// reports come from another goroutine.
		tr = new(trace1xx)
		out = tr.install(w, out)
	}
	if ri != nil {
		// Nothing changes out's header from here to the transport, which
		// then need not check its fields again (h1Transport.fast). Only
		// for this round trip, and never left over from another: ri may
		// take a second request through a proxy after this one
		// (error_pages' page), whose outbound may be this very one, taken
		// from outbounds again, with fields not checked valid.
		ri.checked = nil
		if o.valid {
			ri.checked = out
		}
	}
	res, be, err := p.lb.roundTrip(out, ri)
	if ri != nil {
		ri.checked = nil
	}
	if tr != nil {
		tr.finish()
	}
	// tr is nil only for a request without a body or an upgrade.
	reuse := tr == nil && ri != nil && !ri.slowTrip
	if err != nil {
		p.fail(w, out, ri, err)
	} else {
		p.respond(w, r, out, res, be, upType, ri)
	}
	// Not reached when respond panics (an aborted response): o is left
	// to the collector then.
	if reuse {
		o.release()
	}
}

// respond sends the backend's response res to out to the client.
func (p *Proxy) respond(w http.ResponseWriter, r, out *http.Request, res *http.Response, be *upstream.Backend, upType string, ri *reqInfo) {
	defer p.lb.pool.Done(be)

	if res.StatusCode == http.StatusSwitchingProtocols {
		p.tunnel(w, out, res, upType, ri)
		return
	}
	h := w.Header()
	copyEndToEnd(h, res.Header)
	if upType != "" {
		// The backend refused to switch: the client connection must not
		// go on as HTTP/1 after its upgrade bytes.
		h["Connection"] = append(h["Connection"], closeValue...)
	}
	announced := len(res.Trailer)
	if announced > 0 {
		// *http.Transport leaves "Trailer" out of the response header;
		// rebuild it from the trailer keys.
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := p.copyResponse(w, res); err != nil {
		res.Body.Close()
		if r.Context().Err() == nil {
			p.log.Debug("response body copy failed", "service", p.service, "backend", be.Addr, "error", err)
		}
		// The response has started: the only way to tell the client is to
		// abort the stream (golang.org/issue/23643).
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to populate res.Trailer
	if len(res.Trailer) > 0 {
		// Force chunking, so net/http sends the trailers instead of a
		// Content-Length for a short body.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		copyHeader(w.Header(), res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
}

var closeValue = []string{"close"}

// removeConnectionNamed removes the fields h's Connection header names.
// reqKey is h.Del's canonicalization (FuzzCanonicalKey) without its
// allocation for a name in another case that commonKeys holds: the
// "Connection: keep-alive" many backends send costs nothing.
func removeConnectionNamed(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				delete(h, reqKey(sf))
			}
		}
	}
}

// copyEndToEnd copies src's end-to-end fields to dst as copyHeader does:
// all but the hop-by-hop ones (isHopHeader) and those src's Connection
// names, which it removes from src. One walk of src's few fields, each
// looked up in a switch, instead of a delete hashing every hop-by-hop
// name; src keeps its hop-by-hop fields.
func copyEndToEnd(dst, src http.Header) {
	if _, ok := src["Connection"]; ok {
		removeConnectionNamed(src)
	}
	for k, vv := range src {
		if !isHopHeader(k) {
			addValues(dst, k, vv)
		}
	}
}

// copyHeader adds src's fields to dst. src is the backend's response header,
// which nothing else uses afterwards: a field dst does not have yet takes
// src's slice as it is.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		addValues(dst, k, vv)
	}
}

// addValues adds vv to dst's field k; a field dst does not have yet takes
// vv as it is.
func addValues(dst http.Header, k string, vv []string) {
	if prior, ok := dst[k]; ok {
		dst[k] = append(prior, vv...)
	} else {
		dst[k] = vv
	}
}

// fail answers a request that got no response from a backend.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, ri *reqInfo, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away: nobody to answer (nginx logs 499).
		p.log.Debug("client closed request", "service", p.service, "path", r.URL.Path)
		return
	}
	if ce := clientBodyError(r); ce != nil {
		// Reading the client's body failed (it broke off, sent bad
		// chunking, or crossed max_body): the client's fault, not the
		// backend's, as nginx's 400 for a client body read error (408
		// when it stalled: client_body_timeout).
		code := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](ce); ok {
			code = http.StatusRequestEntityTooLarge
		} else if isTimeout(ce) {
			code = http.StatusRequestTimeout
		}
		p.log.Debug("client request body failed", "service", p.service, "status", code, "error", ce)
		writeError(w, code)
		return
	}
	code, retryAfter := statusFor(err)
	if retryAfter > 0 {
		secs := int((retryAfter + time.Second - 1) / time.Second) // round up
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	lvl := slog.LevelWarn
	if code == http.StatusServiceUnavailable {
		lvl = slog.LevelDebug // an open breaker would flood the log
	}
	var id, backend string
	if ri != nil {
		id, backend = ri.requestID, ri.backend
	}
	p.log.Log(r.Context(), lvl, "proxy error", "service", p.service, "backend", backend, "status", code,
		"request_id", id, "error", err)
	writeError(w, code)
}

// proxyBody is the outbound request's body: reads go to the inbound body
// until the handler has returned; Close is a no-op (see ServeHTTP). read
// counts the bytes taken, so that a retry knows whether the body is spent.
type proxyBody struct {
	rc     io.ReadCloser
	read   atomic.Int64
	closed atomic.Bool
	// failed is the first error other than io.EOF that reading the
	// inbound body returned: a try that failed then failed because of the
	// client (clientBodyError).
	failed atomic.Pointer[error]
}

var errBodyAfterHandler = errors.New("l7: request body read after the handler returned")

func (b *proxyBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyAfterHandler
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.read.Add(int64(n))
	}
	if err != nil && err != io.EOF {
		e := err // only a failing read puts an error on the heap
		b.failed.CompareAndSwap(nil, &e)
	}
	return n, err
}

// clientBodyError is the error reading req's inbound body returned, if any.
func clientBodyError(req *http.Request) error {
	if b, ok := req.Body.(*proxyBody); ok {
		if e := b.failed.Load(); e != nil {
			return *e
		}
	}
	return nil
}

func (b *proxyBody) Close() error { return nil }

const copyBufSize = 32 << 10

// copyBufs holds array pointers, so Put converts the slice back without
// allocating.
var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// slogWriter sends http.Server's own log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(b)))
	return len(b), nil
}
