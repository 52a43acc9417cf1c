package l7

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// balancer sends the proxy's outbound requests: per attempt it asks the
// service's breaker, picks a backend from the pool, and sends the request
// over that backend's pooled transport.
type balancer struct {
	service    string
	pool       *upstream.Pool
	breaker    *upstream.Breaker
	hashKey    string
	sticky     *config.Sticky
	attempts   int
	perTry     time.Duration
	transports map[*upstream.Backend]roundTripper
	log        *slog.Logger
	retries    prometheus.Counter // nil: not counted (see CountRetries)
}

func newBalancer(svc *config.Service, pool *upstream.Pool, log *slog.Logger) *balancer {
	b := &balancer{
		service:    svc.Name,
		pool:       pool,
		breaker:    pool.Breaker(),
		hashKey:    svc.HTTP.HashKey,
		sticky:     svc.HTTP.Sticky,
		attempts:   1,
		transports: map[*upstream.Backend]roundTripper{},
		log:        log,
	}
	if svc.Balancer != config.BalancerHash {
		b.hashKey = ""
	}
	if r := svc.HTTP.Retry; r != nil {
		b.attempts, b.perTry = max(r.Attempts, 1), r.PerTryTimeout
	}
	for _, be := range pool.Backends() {
		if be.Scheme == config.SchemeH3 {
			b.transports[be] = newH3Transport(svc, be)
			continue
		}
		b.transports[be] = newTransport(svc, be)
	}
	return b
}

// roundTripper is a backend's transport.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// newTransport is the keep-alive pool toward one backend. Compression is
// off so bodies pass through as the backend encoded them. A plain-HTTP
// backend gets the fast path for bodyless requests (h1Transport).
func newTransport(svc *config.Service, be *upstream.Backend) roundTripper {
	d := &net.Dialer{Timeout: svc.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: 4}}
	t := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   svc.HTTP.MaxIdleConnsPerBackend,
		IdleConnTimeout:       svc.HTTP.IdleConnTimeout,
		ResponseHeaderTimeout: svc.HTTP.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   svc.ConnectTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	var protos http.Protocols
	switch be.Scheme {
	case config.SchemeH2C:
		protos.SetUnencryptedHTTP2(true)
	case config.SchemeHTTPS:
		t.TLSClientConfig = be.TLS.Clone()
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	t.Protocols = &protos
	// HTTP/2 requests go out without HPACK's dynamic table: no entry fits
	// in one byte. The encoder keeps the strings it indexes for the life of
	// the connection, and a value or path the HTTP/1 server parsed is a
	// substring of the client's whole head: a hundred small entries would
	// keep a hundred heads alive. The static table and Huffman coding still
	// apply; nginx's HTTP/2 encoder does not index either.
	t.HTTP2 = &http.HTTP2Config{MaxEncoderHeaderTableSize: 1}
	if be.Scheme != config.SchemeHTTP {
		return t
	}
	return &h1Transport{
		fallback:      t,
		addr:          be.Addr,
		dial:          d.DialContext,
		maxIdle:       svc.HTTP.MaxIdleConnsPerBackend,
		idleTimeout:   svc.HTTP.IdleConnTimeout,
		headerTimeout: svc.HTTP.ResponseHeaderTimeout,
	}
}

func (b *balancer) closeIdle() {
	for _, t := range b.transports {
		t.CloseIdleConnections()
	}
}

// errNoAttempt is returned when a request made no attempt at all.
var errNoAttempt = errors.New("no attempt made")

// errPerTryTimeout ends a try whose response headers did not arrive within
// retry.per_try_timeout; it is a deadline error (504 if it is the last).
var errPerTryTimeout = fmt.Errorf("per-try timeout: %w", context.DeadlineExceeded)

// roundTrip sends req to a backend, retrying as configured. On success the
// caller owns resp and must call pool.Done(be) once it is done with it.
func (b *balancer) roundTrip(req *http.Request, ri *reqInfo) (resp *http.Response, be *upstream.Backend, err error) {
	var key upstream.Key
	key.Hash, key.NoHash = b.hash(req, ri)
	if b.sticky != nil {
		if c, err := req.Cookie(b.sticky.Cookie); err == nil {
			key.Sticky = c.Value
		}
	}
	// Until a byte of a body that cannot be replayed is read, a try that
	// failed to connect can hand it to the next try.
	body, _ := req.Body.(*proxyBody)
	if replayable(req) {
		body = nil
	}
	var tried upstream.Tried
	err = errNoAttempt
	// A try whose connection was never made is not spent: the request
	// moves on to the next untried backend even without a retry block, as
	// the L4 path does and nginx's default proxy_next_upstream error does.
	// Pick ends the loop once every backend has been tried.
	spent := 0
	for try := 0; ; try++ {
		resp, be, retry, aerr := b.attempt(req, try, &key, &tried, ri)
		if aerr == nil {
			return resp, be, nil
		}
		if try > 0 && errors.Is(aerr, upstream.ErrNoHealthy) {
			// Every backend has been tried: the client gets the last
			// backend's failure, not "no backend".
			break
		}
		err = aerr
		if !retry || body != nil && body.read.Load() > 0 {
			break
		}
		if !isDialError(aerr) {
			spent++
		}
		if spent >= b.attempts {
			break
		}
		if b.retries != nil {
			b.retries.Inc()
		}
		b.log.Debug("retrying on another backend", "service", b.service, "attempt", try+1, "error", err)
	}
	return nil, nil, err
}

// attempt makes one try; retry says whether another try may follow.
func (b *balancer) attempt(req *http.Request, try int, key *upstream.Key, tried *upstream.Tried, ri *reqInfo) (*http.Response, *upstream.Backend, bool, error) {
	var done func(bool)
	if b.breaker != nil {
		var err error
		if done, err = b.breaker.Allow(); err != nil {
			return nil, nil, false, err
		}
	}
	be, err := b.pool.Pick(key, tried)
	if err != nil {
		if done != nil {
			done(true) // not the backends' failure
		}
		return nil, nil, false, err
	}
	out := req
	if try > 0 {
		// The transport may still hold the previous try's request.
		out = req.Clone(req.Context())
		if req.GetBody != nil && req.Body != http.NoBody && req.Body != nil {
			if out.Body, err = req.GetBody(); err != nil {
				b.pool.Done(be)
				return nil, nil, false, err
			}
		}
	}
	out.URL.Host = be.Addr
	out.URL.Scheme = "http"
	if be.Scheme == config.SchemeHTTPS || be.Scheme == config.SchemeH3 {
		out.URL.Scheme = "https"
	}
	if ri != nil {
		ri.backend = be.Addr
	}
	var timer *time.Timer
	var cancel context.CancelCauseFunc
	if b.perTry > 0 {
		// The try's deadline covers the response headers only: once the
		// response has started it is the client's, however long it runs.
		// The context is released with the request's own when the
		// handler returns.
		var ctx context.Context
		ctx, cancel = context.WithCancelCause(req.Context())
		timer = time.AfterFunc(b.perTry, func() { cancel(errPerTryTimeout) })
		if out == req {
			out = req.WithContext(ctx)
		} else {
			out = out.WithContext(ctx)
		}
	}
	if ri != nil {
		ri.tripOpen = true
	}
	resp, err := b.transports[be].RoundTrip(out)
	if ri != nil && ri.tripOpen {
		ri.slowTrip = true
	}
	if timer != nil && !timer.Stop() && err == nil {
		// The deadline passed as the headers arrived: the body is cut off.
		resp.Body.Close()
		err = errPerTryTimeout
	}
	if err != nil {
		if cancel != nil {
			cancel(nil)
		}
		b.pool.Done(be)
		if done != nil {
			// A client that went away, or whose body could not be read
			// (max_body crossed, a broken upload), is not the backend's
			// failure: it must not open the breaker for everyone.
			done(req.Context().Err() != nil || clientBodyError(req) != nil)
		}
		if isDialError(err) {
			if req.Context().Err() == nil {
				b.pool.DialFailed(be, err) // warn, as the TCP proxy does
			} else {
				b.pool.MarkDown(be) // the client left mid-dial: nothing to warn of
			}
		}
		// Retry only what cannot have reached a backend's application
		// twice: any request whose connection was never made, and safe
		// methods with a replayable body whatever happened.
		return nil, nil, isDialError(err) || safeMethod(req.Method) && replayable(req), err
	}
	if done != nil {
		done(!b.breaker.IsFailureStatus(resp.StatusCode))
	}
	if b.sticky != nil && key.Sticky != be.ID() {
		setStickyCookie(resp, b.sticky, be.ID())
	}
	return resp, be, false, nil
}

// hash is the request's hash_key hashed; none reports a request without
// the header or cookie the key names (see upstream.Key.NoHash).
func (b *balancer) hash(req *http.Request, ri *reqInfo) (h uint64, none bool) {
	switch k := b.hashKey; {
	case k == "":
		return 0, false
	case k == config.HashPath:
		return fnv64(req.URL.Path), false
	case k == config.HashHost:
		return fnv64(strings.ToLower(req.Host)), false
	case strings.HasPrefix(k, "header:"):
		v := req.Header.Get(k[len("header:"):])
		return fnv64(v), v == ""
	case strings.HasPrefix(k, "cookie:"):
		if c, err := req.Cookie(k[len("cookie:"):]); err == nil && c.Value != "" {
			return fnv64(c.Value), false
		}
		return 0, true
	default: // client_ip
		if ri != nil {
			a := ri.client.As16()
			return fnv64(string(a[:])), false
		}
		return 0, false
	}
}

// fnv64 is FNV-1a: a fixed function, so every proxynow process (and every
// restart) maps a key to the same backend, unlike a per-process seeded
// hash.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func setStickyCookie(resp *http.Response, s *config.Sticky, id string) {
	c := &http.Cookie{Name: s.Cookie, Value: id, Path: "/", Secure: s.Secure, HttpOnly: s.HTTPOnly, SameSite: http.SameSiteLaxMode}
	if s.MaxAge > 0 {
		c.MaxAge = int(s.MaxAge / time.Second)
	}
	resp.Header.Add("Set-Cookie", c.String())
}

// replayable reports whether a request may be sent again: its body can be
// re-read (none, or GetBody set).
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || req.ContentLength == 0
}

func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || isH3DialError(err)
}
