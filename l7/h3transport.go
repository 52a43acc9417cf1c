package l7

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

// h3Transport speaks HTTP/3 to one h3:// backend over quic-go's client,
// one multiplexed QUIC connection (redialed when it closes). It adds what
// http.Transport has and http3.Transport lacks: the response header
// timeout.
type h3Transport struct {
	tr            *http3.Transport
	headerTimeout time.Duration
}

func newH3Transport(svc *config.Service, be *upstream.Backend) *h3Transport {
	tc := be.TLS.Clone()
	tc.NextProtos = nil // http3 offers h3
	return &h3Transport{
		tr: &http3.Transport{
			TLSClientConfig: tc,
			QUICConfig: &quic.Config{
				HandshakeIdleTimeout: svc.ConnectTimeout,
				MaxIdleTimeout:       svc.HTTP.IdleConnTimeout,
				// Keep-alives hold the pooled connection open through NAT
				// and idle timers between requests, like TCP keep-alive.
				KeepAlivePeriod: min(svc.HTTP.IdleConnTimeout/2, 15*time.Second),
			},
			DisableCompression: true,
		},
		headerTimeout: svc.HTTP.ResponseHeaderTimeout,
	}
}

func (t *h3Transport) CloseIdleConnections() { t.tr.CloseIdleConnections() }

// errH3HeaderTimeout is a net.Error with Timeout() true, so the client gets
// 504 as for an http.Transport's response header timeout.
var errH3HeaderTimeout = &timeoutError{"timeout awaiting response headers from the h3 backend"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

func (t *h3Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.headerTimeout <= 0 {
		return t.tr.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.headerTimeout, func() { cancel(errH3HeaderTimeout) })
	resp, err := t.tr.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, errH3HeaderTimeout
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	// The request's context must outlive the headers: the body streams
	// under it. Closing the body releases it.
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// isH3DialError reports a failure to reach an h3:// backend at all: the
// QUIC handshake never completed, so no request reached it and another
// backend may be tried.
func isH3DialError(err error) bool {
	var hs *quic.HandshakeTimeoutError
	return errors.As(err, &hs)
}
