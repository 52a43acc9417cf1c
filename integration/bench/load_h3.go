//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// HTTP/3 load: quic-go's HTTP/3 client in the shape of h2-tls, 10
// connections × 10 concurrent requests, GET / of the 13-byte response.
// Neither h2load nor any other packaged tool speaks HTTP/3 here, so the
// Go loader is used for every target alike.

// h3Client is one QUIC connection: an http3.Transport dials one per host.
// Requests go to the Transport directly: http.Client's per-request
// timeout timer, redirect and cookie handling cost the loader CPU that
// on a 2-core machine the target would otherwise get.
type h3Client struct {
	tr  *http3.Transport
	url string
}

func newH3Client(addr string) *h3Client {
	tr := &http3.Transport{
		TLSClientConfig: clientTLSConfig(),
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 30 * time.Second},
	}
	return &h3Client{tr: tr, url: "https://" + addr + "/"}
}

// requests builds one reusable GET per worker (a GET without a body is
// not changed by RoundTrip), all bound by ctx.
func (c *h3Client) request(ctx context.Context) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		panic(err) // the URL is built from a host:port
	}
	return req
}

func h3Requests(ctx context.Context, cs []*h3Client, per int) []*http.Request {
	reqs := make([]*http.Request, len(cs)*per)
	for i := range reqs {
		reqs[i] = cs[i/per].request(ctx)
	}
	return reqs
}

func (c *h3Client) close() { c.tr.Close() }

func (c *h3Client) get(req *http.Request) error {
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return err
	}
	var buf [256]byte
	n, rerr := io.ReadFull(resp.Body, buf[:len(httpBody)+1])
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if resp.ProtoMajor != 3 {
		return fmt.Errorf("spoke %s, not HTTP/3", resp.Proto)
	}
	if rerr != io.ErrUnexpectedEOF || !bytes.Equal(buf[:n], []byte(httpBody)) {
		return errBody
	}
	return nil
}

func h3Clients(addr string) []*h3Client {
	cs := make([]*h3Client, h2Conns)
	for i := range cs {
		cs[i] = newH3Client(addr)
	}
	return cs
}

func closeH3(cs []*h3Client) {
	for _, c := range cs {
		c.close()
	}
}

// loadH3 runs h2Conns × h2Streams closed-loop workers for d.
func loadH3(_ backend, addr string, d time.Duration, _ options, m *meter) (sample, error) {
	cs := h3Clients(addr)
	defer closeH3(cs)
	// A stalled request fails when the window's grace ends.
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Second)
	defer cancel()
	reqs := h3Requests(ctx, cs, h2Streams)
	return closedLoop(len(reqs), d, m, "request", addr, func(w int) error { return cs[w/h2Streams].get(reqs[w]) })
}

// openLoopH3 starts requests at a fixed rate for d (see openLoopHTTP).
func openLoopH3(addr string, rate float64, d time.Duration, _ options) (sample, error) {
	n := min(int(rate*d.Seconds()), 1<<22)
	if n < 1 {
		return sample{}, errors.New("open loop: rate too low")
	}
	cs := h3Clients(addr)
	defer closeH3(cs)
	per := 2 * h2Streams
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	reqs := h3Requests(ctx, cs, per)
	return openLoop(n, len(reqs), rate, d, func(w int) error { return cs[w/per].get(reqs[w]) }), nil
}

// h3Probe succeeds once a GET / over HTTP/3 answers with the backend's body.
func h3Probe(addr string) func() error {
	return func() error {
		c := newH3Client(addr)
		defer c.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.get(c.request(ctx))
	}
}

var h3Scenario = &scenario{
	name: "h3", title: "10. HTTP/3 (QUIC), 10 connections × 10 streams, 13-byte response", kind: kindH3,
	unit: "req/s", scale: 1, cpuUnit: "CPU µs/req", cpuScale: 1e6, latency: true, goLoader: true,
	newBackend: func() (backend, error) { return startHTTPBackend() },
	load:       loadH3,
	openLoop:   openLoopH3,
	loader: func(options) string {
		return fmt.Sprintf("quic-go http3 client, %d connections × %d streams", h2Conns, h2Streams)
	},
}
