package l7

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// Proxy is the handler of a service with backends: a reverse proxy whose
// transport picks a backend per attempt, retries what is safe to retry,
// and consults the service's circuit breaker.
type Proxy struct {
	service string
	rp      *httputil.ReverseProxy
	lb      *balancer
	log     *slog.Logger
}

// NewProxy builds a service's handler once, at load time. pool must be the
// service's pool.
func NewProxy(svc *config.Service, pool *upstream.Pool, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{service: svc.Name, log: logger}
	p.lb = newBalancer(svc, pool, logger)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite(svc.HTTP.PassHost),
		Transport:      p.lb,
		FlushInterval:  svc.HTTP.FlushInterval,
		BufferPool:     bufferPool{},
		ErrorHandler:   p.errorHandler,
		ModifyResponse: p.lb.modifyResponse,
		ErrorLog:       log.New(slogWriter{logger}, "", 0),
	}
	return p
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// CloseIdleConnections closes the pooled keep-alive connections (reload,
// shutdown).
func (p *Proxy) CloseIdleConnections() { p.lb.closeIdle() }

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers (those named in Connection too) and every forwarding
// header; proxynow adds its own after that, so a client cannot remove them.
func (p *Proxy) rewrite(passHost bool) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		in, out := pr.In, pr.Out
		ri := infoFrom(in.Context())
		// The balancer fills in the backend per attempt.
		out.URL.Scheme, out.URL.Host = "http", "backend.invalid"
		if passHost {
			out.Host = in.Host
		} else {
			out.Host = ""
		}
		// Only a client's own HTTP/1.1 Upgrade (WebSocket) is tunnelled;
		// an h2c upgrade would switch the backend connection to a protocol
		// the client never negotiated with proxynow.
		if strings.EqualFold(out.Header.Get("Upgrade"), "h2c") {
			out.Header.Del("Upgrade")
			out.Header.Del("Connection")
		}
		out.Header.Del("HTTP2-Settings")
		if ri == nil {
			return
		}
		setForwarded(in, out, ri)
		out.Header["X-Request-Id"] = []string{ri.requestID}
	}
}

// setForwarded sets X-Forwarded-For/Proto/Host, Forwarded (RFC 7239) and
// Via. A trusted peer's forwarding headers are kept and appended to; from
// anyone else they were already removed, so they start afresh.
func setForwarded(in, out *http.Request, ri *reqInfo) {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	peer := ri.peer.String()
	if ri.trusted {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			out.Header["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + peer}
		} else {
			out.Header["X-Forwarded-For"] = []string{peer}
		}
		for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
			if v := in.Header[h]; len(v) > 0 {
				out.Header[h] = v
			}
		}
		if v := in.Header["Forwarded"]; len(v) > 0 {
			out.Header["Forwarded"] = []string{strings.Join(v, ", ") + ", " + forwardedElem(ri.peer, proto, in.Host)}
		} else {
			out.Header["Forwarded"] = []string{forwardedElem(ri.peer, proto, in.Host)}
		}
	} else {
		out.Header["X-Forwarded-For"] = []string{peer}
		out.Header["Forwarded"] = []string{forwardedElem(ri.peer, proto, in.Host)}
	}
	if out.Header.Get("X-Forwarded-Proto") == "" {
		out.Header["X-Forwarded-Proto"] = []string{proto}
	}
	if out.Header.Get("X-Forwarded-Host") == "" && in.Host != "" {
		out.Header["X-Forwarded-Host"] = []string{in.Host}
	}
	via := strconv.Itoa(in.ProtoMajor) + "." + strconv.Itoa(in.ProtoMinor) + " proxynow"
	if in.ProtoMajor >= 2 {
		via = strconv.Itoa(in.ProtoMajor) + " proxynow"
	}
	if prior := in.Header["Via"]; len(prior) > 0 {
		via = strings.Join(prior, ", ") + ", " + via
	}
	out.Header["Via"] = []string{via}
}

// forwardedElem is one RFC 7239 element; IPv6 nodes are quoted and
// bracketed (§6), the host is a quoted-string when it needs to be.
func forwardedElem(peer netip.Addr, proto, host string) string {
	var b strings.Builder
	b.WriteString("for=")
	if peer.Is6() {
		b.WriteString(`"[` + peer.String() + `]"`)
	} else {
		b.WriteString(peer.String())
	}
	b.WriteString(";proto=" + proto)
	if host != "" {
		b.WriteString(";host=" + strconv.Quote(host))
	}
	return b.String()
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away: nobody to answer (nginx logs 499).
		p.log.Debug("client closed request", "service", p.service, "path", r.URL.Path)
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
	ri := infoFrom(r.Context())
	var id, backend string
	if ri != nil {
		id, backend = ri.requestID, ri.backend
	}
	p.log.Log(r.Context(), lvl, "proxy error", "service", p.service, "backend", backend, "status", code,
		"request_id", id, "error", err)
	writeError(w, code)
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers. The pool holds
// array pointers, so Put converts the slice back without allocating.
type bufferPool struct{}

const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

func (bufferPool) Get() []byte { return copyBufs.Get().(*[copyBufSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= copyBufSize {
		copyBufs.Put((*[copyBufSize]byte)(b[:copyBufSize]))
	}
}

// slogWriter sends ReverseProxy's and http.Server's own log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(b)))
	return len(b), nil
}
