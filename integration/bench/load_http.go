//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HTTP load: wrk (HTTP/1.1) and h2load (HTTP/2) when installed, the
// harness's Go clients otherwise and always in -short mode. The shapes are
// issue 9's: wrk -t1 -c50 (keep-alive, or Connection: close for a new
// connection per request), h2load -c10 -m10 over TLS.

type httpMode int

const (
	modeKeepAlive httpMode = iota // HTTP/1.1, 50 keep-alive connections
	modeClose                     // HTTP/1.1, a new connection per request, 50 at a time
	modeH2                        // HTTP/2 over TLS, 10 connections × 10 streams
)

const (
	h1Conns   = 50
	h2Conns   = 10
	h2Streams = 10
)

// loaderFor names the load generator mode uses with these options.
func loaderFor(mode httpMode, o options) string {
	switch {
	case mode == modeH2 && !o.goLoaders && haveTool("h2load"):
		return fmt.Sprintf("h2load -c%d -m%d -t1 -D <duration> (latency from its --log-file)", h2Conns, h2Streams)
	case mode == modeH2:
		return fmt.Sprintf("Go net/http client, %d connections × %d streams", h2Conns, h2Streams)
	case !o.goLoaders && haveTool("wrk"):
		if mode == modeClose {
			return fmt.Sprintf("wrk -t1 -c%d -d <duration> --latency -H 'Connection: close'", h1Conns)
		}
		return fmt.Sprintf("wrk -t1 -c%d -d <duration> --latency", h1Conns)
	case mode == modeClose:
		return fmt.Sprintf("Go net/http client, %d workers, DisableKeepAlives", h1Conns)
	default:
		return fmt.Sprintf("Go net/http client, %d keep-alive connections", h1Conns)
	}
}

func haveTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// httpLoad is a scenario's load function for mode.
func httpLoad(mode httpMode) func(b backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
	return func(_ backend, addr string, d time.Duration, o options, m *meter) (sample, error) {
		switch {
		case mode == modeH2 && !o.goLoaders && haveTool("h2load"):
			return runH2load(addr, d, m)
		case mode != modeH2 && !o.goLoaders && haveTool("wrk"):
			return runWrk(addr, d, mode == modeClose, m)
		}
		return goHTTPLoad(mode, addr, d, m)
	}
}

// wholeSeconds rounds d up to whole seconds, at least one (wrk's -d and
// h2load's -D are in seconds here).
func wholeSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds()-1e-9)))
}

// ---------------------------------------------------------------------------
// wrk

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),`)
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(addr string, d time.Duration, closeEach bool, m *meter) (sample, error) {
	var extra []string
	if closeEach {
		extra = []string{"-H", "Connection: close"}
	}
	return runWrkArgs(addr, d, extra, m)
}

// runWrkArgs runs wrk's keep-alive shape with extra arguments (a header, a
// script).
func runWrkArgs(addr string, d time.Duration, extra []string, m *meter) (sample, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", h1Conns), "-d", fmt.Sprintf("%ds", wholeSeconds(d)), "--latency", "--timeout", "5s"}
	args = append(args, extra...)
	args = append(args, "http://"+addr+"/")
	cmd := exec.Command("wrk", args...)
	m.begin()
	out, err := cmd.CombinedOutput()
	m.end()
	if err != nil {
		return sample{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s, err := parseWrk(string(out))
	if err != nil {
		return s, err
	}
	secs := s.Seconds
	m.fill(&s)
	if secs > 0 {
		s.Seconds = secs // wrk's own measured time: throughput is its Requests/sec
	}
	return s, nil
}

// parseWrk reads wrk --latency's report. Work is the requests that got a
// 2xx or 3xx; Errors the others and socket errors.
func parseWrk(out string) (sample, error) {
	var s sample
	mr := wrkRequests.FindStringSubmatch(out)
	mrate := wrkRate.FindStringSubmatch(out)
	if mr == nil || mrate == nil {
		return s, fmt.Errorf("wrk: cannot parse output:\n%s", out)
	}
	total, _ := strconv.ParseFloat(mr[1], 64)
	rate, _ := strconv.ParseFloat(mrate[1], 64)
	var bad int64
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		bad, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			s.Errors += n
		}
	}
	s.Errors += bad
	s.Work = total - float64(bad)
	if rate > 0 {
		s.Seconds = total / rate
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v := durMs(m[2], m[3])
		if m[1] == "50" {
			s.P50ms = v
		} else {
			s.P99ms = v
		}
	}
	if s.Work <= 0 {
		return s, fmt.Errorf("wrk: no successful request:\n%s", out)
	}
	return s, nil
}

// durMs converts wrk's "3.20ms"-style figures to milliseconds.
func durMs(num, unit string) float64 {
	v, _ := strconv.ParseFloat(num, 64)
	switch unit {
	case "us":
		return v / 1e3
	case "s":
		return v * 1e3
	case "m":
		return v * 60e3
	case "h":
		return v * 3600e3
	}
	return v
}

// ---------------------------------------------------------------------------
// h2load

var (
	h2Finished = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

func runH2load(addr string, d time.Duration, m *meter) (sample, error) {
	f, err := os.CreateTemp("", "proxynow-bench-h2load-*.log")
	if err != nil {
		return sample{}, err
	}
	logPath := f.Name()
	f.Close()
	defer os.Remove(logPath)
	args := []string{fmt.Sprintf("-c%d", h2Conns), fmt.Sprintf("-m%d", h2Streams), "-t1",
		"-D", strconv.Itoa(wholeSeconds(d)), "--log-file=" + logPath, "https://" + addr + "/"}
	cmd := exec.Command("h2load", args...)
	m.begin()
	out, err := cmd.CombinedOutput()
	m.end()
	if err != nil {
		return sample{}, fmt.Errorf("h2load: %v\n%s", err, out)
	}
	s, err := parseH2load(string(out))
	if err != nil {
		return s, err
	}
	secs := s.Seconds
	m.fill(&s)
	if secs > 0 {
		s.Seconds = secs
	}
	if err := h2loadLatency(logPath, &s); err != nil {
		return s, err
	}
	return s, nil
}

// parseH2load reads h2load's summary. Work is the 2xx responses; Errors
// the failed, errored and timed-out requests and the 4xx and 5xx ones.
func parseH2load(out string) (sample, error) {
	var s sample
	mf := h2Finished.FindStringSubmatch(out)
	mr := h2Requests.FindStringSubmatch(out)
	ms := h2Status.FindStringSubmatch(out)
	if mf == nil || mr == nil || ms == nil {
		return s, fmt.Errorf("h2load: cannot parse output:\n%s", out)
	}
	atoi := func(x string) int64 { n, _ := strconv.ParseInt(x, 10, 64); return n }
	s.Seconds = durMs(mf[1], mf[2]) / 1e3
	s.Work = float64(atoi(ms[1]) + atoi(ms[2]))
	s.Errors = atoi(mr[5]) + atoi(mr[6]) + atoi(mr[7]) + atoi(ms[3]) + atoi(ms[4])
	if s.Work <= 0 {
		return s, fmt.Errorf("h2load: no successful request:\n%s", out)
	}
	return s, nil
}

// h2loadLatency reads --log-file rows (start µs, status, duration µs) into
// the sample's p50 and p99.
func h2loadLatency(path string, s *sample) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := newHistogram()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		status, _ := strconv.Atoi(fields[1])
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || status < 200 || status >= 400 {
			continue
		}
		h.record(time.Duration(us) * time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	s.hist = h
	s.finishLatency()
	return nil
}

// ---------------------------------------------------------------------------
// Go clients

// httpClient is one client of the Go loaders: an http.Client over its own
// Transport (for HTTP/2, one Transport is one connection).
type httpClient struct {
	tr  *http.Transport
	hc  *http.Client
	url string
}

func newHTTPClient(addr string, useTLS, keepAlive bool) (*httpClient, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        h1Conns * 2,
		MaxIdleConnsPerHost: h1Conns * 2,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
		cfg := clientTLSConfig()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		tr.TLSClientConfig = cfg
		tr.ForceAttemptHTTP2 = true
		tr.TLSHandshakeTimeout = 5 * time.Second
	}
	return &httpClient{
		tr:  tr,
		hc:  &http.Client{Transport: tr, Timeout: 5 * time.Second},
		url: scheme + "://" + addr + "/",
	}, nil
}

func (c *httpClient) close() { c.tr.CloseIdleConnections() }

// get fetches / and checks the status and the body.
func (c *httpClient) get() error {
	return c.getCtx(context.Background())
}

func (c *httpClient) getCtx(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	// Workers share the client: the buffer is per call (on the stack).
	var buf [256]byte
	n, rerr := io.ReadFull(resp.Body, buf[:len(httpBody)+1])
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if rerr != io.ErrUnexpectedEOF || !bytes.Equal(buf[:n], []byte(httpBody)) {
		return errBody
	}
	return nil
}

// goClients returns the clients and the number of workers on each for mode.
func goClients(mode httpMode, addr string) ([]*httpClient, int, error) {
	n, per := 1, h1Conns
	if mode == modeH2 {
		n, per = h2Conns, h2Streams
	}
	var cs []*httpClient
	for range n {
		c, err := newHTTPClient(addr, mode == modeH2, mode != modeClose)
		if err != nil {
			return nil, 0, err
		}
		cs = append(cs, c)
	}
	return cs, per, nil
}

// goHTTPLoad runs closed-loop workers for d: 50 on one keep-alive (or
// no-keep-alive) Transport, or 10 per HTTP/2 connection on 10 Transports.
func goHTTPLoad(mode httpMode, addr string, d time.Duration, m *meter) (sample, error) {
	clients, per, err := goClients(mode, addr)
	if err != nil {
		return sample{}, err
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	return closedLoop(len(clients)*per, d, m, "request", addr, func(w int) error { return clients[w/per].get() })
}

// openLoopHTTP starts requests at a fixed rate for d from a pool of
// workers (on keep-alive connections, fresh connections, or HTTP/2
// streams per mode); latency runs from each request's scheduled start, so
// a stalled target is charged for the queue it causes.
func openLoopHTTP(mode httpMode) func(addr string, rate float64, d time.Duration, o options) (sample, error) {
	return func(addr string, rate float64, d time.Duration, o options) (sample, error) {
		n := int(rate * d.Seconds())
		if n < 1 {
			return sample{}, errors.New("open loop: rate too low")
		}
		n = min(n, 1<<22)
		clients, per, err := goClients(mode, addr)
		if err != nil {
			return sample{}, err
		}
		defer func() {
			for _, c := range clients {
				c.close()
			}
		}()
		// Twice the closed-loop concurrency: enough not to throttle the
		// schedule at half the peak, few enough to stay one pool.
		per *= 2
		return openLoop(n, len(clients)*per, rate, d, func(w int) error { return clients[w/per].get() }), nil
	}
}

// toolVersion is the first line of `name args...`, for the report.
func toolVersion(name string, args ...string) string {
	if !haveTool(name) {
		return ""
	}
	return firstLine(name, args...)
}
