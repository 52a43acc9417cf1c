package l7

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// balancer is the ReverseProxy's http.RoundTripper: per attempt it asks the
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
	transports map[*upstream.Backend]backendTransport
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
		transports: map[*upstream.Backend]backendTransport{},
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

// newTransport is the keep-alive pool toward one backend. Compression is
// off so bodies pass through as the backend encoded them.
func newTransport(svc *config.Service, be *upstream.Backend) *http.Transport {
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
	return t
}

func (b *balancer) closeIdle() {
	for _, t := range b.transports {
		t.CloseIdleConnections()
	}
}

// errNoAttempt is returned when a request made no attempt at all.
var errNoAttempt = errors.New("no attempt made")

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	ri := infoFrom(req.Context())
	key := upstream.Key{Hash: b.hash(req, ri)}
	if b.sticky != nil {
		if c, err := req.Cookie(b.sticky.Cookie); err == nil {
			key.Sticky = c.Value
		}
	}
	var body *onceBody
	if b.attempts > 1 && !replayable(req) {
		// The body can be sent once. Until a byte of it is read, a try that
		// failed to connect can hand it to the next try: the transport
		// closing it after a failed try must not end it.
		body = &onceBody{ReadCloser: req.Body}
		req.Body = body
	}
	var tried upstream.Tried
	err := errNoAttempt
	for try := range b.attempts {
		resp, retry, aerr := b.attempt(req, try, &key, &tried, ri)
		if aerr == nil {
			return resp, nil
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
		if b.retries != nil {
			b.retries.Inc()
		}
		b.log.Debug("retrying on another backend", "service", b.service, "attempt", try+1, "error", err)
	}
	return nil, err
}

// attempt makes one try; retry says whether another try may follow.
func (b *balancer) attempt(req *http.Request, try int, key *upstream.Key, tried *upstream.Tried, ri *reqInfo) (*http.Response, bool, error) {
	var done func(bool)
	if b.breaker != nil {
		var err error
		if done, err = b.breaker.Allow(); err != nil {
			return nil, false, err
		}
	}
	be, err := b.pool.Pick(key, tried)
	if err != nil {
		if done != nil {
			done(true) // not the backends' failure
		}
		return nil, false, err
	}
	out := req
	if try > 0 {
		out = req.Clone(req.Context())
		if req.GetBody != nil && req.Body != http.NoBody && req.Body != nil {
			if out.Body, err = req.GetBody(); err != nil {
				b.pool.Done(be)
				return nil, false, err
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
	resp, err := b.transports[be].RoundTrip(out)
	if err != nil {
		b.pool.Done(be)
		if done != nil {
			// A client that went away is not the backend's failure.
			done(req.Context().Err() != nil)
		}
		if isDialError(err) {
			b.pool.MarkDown(be)
		}
		// Retry only what cannot have reached a backend's application
		// twice: any request whose connection was never made, and safe
		// methods with a replayable body whatever happened.
		return nil, isDialError(err) || safeMethod(req.Method) && replayable(req), err
	}
	if done != nil {
		done(!b.breaker.IsFailureStatus(resp.StatusCode))
	}
	release := func() { b.pool.Done(be) }
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// ReverseProxy tunnels an upgrade through the writable body.
		resp.Body = &releaseRWBody{releaseBody{ReadCloser: rw, release: release}, rw}
	} else {
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
	}
	if b.sticky != nil && key.Sticky != be.ID() {
		setStickyCookie(resp, b.sticky, be.ID())
	}
	return resp, false, nil
}

// modifyResponse is ReverseProxy's hook, run after it removed the
// response's hop-by-hop headers: an upgrade the backend refused closes the
// client connection, which must not go on as HTTP/1 after upgrade bytes.
func (b *balancer) modifyResponse(resp *http.Response) error {
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.Request != nil && isUpgrade(resp.Request) {
		resp.Header.Set("Connection", "close")
	}
	return nil
}

func (b *balancer) hash(req *http.Request, ri *reqInfo) uint64 {
	switch k := b.hashKey; {
	case k == "":
		return 0
	case k == config.HashPath:
		return fnv64(req.URL.Path)
	case k == config.HashHost:
		return fnv64(strings.ToLower(req.Host))
	case strings.HasPrefix(k, "header:"):
		return fnv64(req.Header.Get(k[len("header:"):]))
	case strings.HasPrefix(k, "cookie:"):
		if c, err := req.Cookie(k[len("cookie:"):]); err == nil {
			return fnv64(c.Value)
		}
		return 0
	default: // client_ip
		if ri != nil {
			a := ri.client.As16()
			return fnv64(string(a[:]))
		}
		return 0
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

// onceBody is a request body that can be offered to several tries until
// one of them reads from it; closing is left to the server that owns it.
type onceBody struct {
	io.ReadCloser
	read atomic.Int64
}

func (b *onceBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *onceBody) Close() error { return nil }

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

// releaseBody ends a backend's in-flight count when the response body is
// closed (ReverseProxy always closes it).
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

// releaseRWBody is releaseBody for a switched protocol's two-way stream.
type releaseRWBody struct {
	releaseBody
	w io.Writer
}

func (r *releaseRWBody) Write(p []byte) (int, error) { return r.w.Write(p) }

func (r *releaseBody) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
