//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// The HTTP backend is a fixed-body HTTP/1.1 server run in a process of its
// own (the harness's executable re-run with backendEnv set) with
// GOMAXPROCS=1, so that it gets one core's worth like the targets, and its
// CPU is not the harness's. It parses just enough HTTP/1.1 for the
// proxies' upstream requests and the loaders' direct ones (keep-alive,
// Connection: close, HTTP/1.0, pipelining, a Content-Length body) and
// answers every request with the same 13-byte body, so that it is not the
// bottleneck of the direct run and leaves the shared CPU to the proxies.

// backendEnv, when set in the environment, makes the harness's executable
// (or the test binary, through TestMain) serve HTTP on its value, an
// address, instead of benchmarking.
const backendEnv = "PROXYNOW_BENCH_HTTP_BACKEND"

// httpBody is the 13-byte response body of every HTTP scenario.
const httpBody = "Hello, World!"

var (
	respKeepAlive = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(httpBody)) + "\r\n\r\n" + httpBody)
	respClose     = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(httpBody)) + "\r\nConnection: close\r\n\r\n" + httpBody)
	respBad       = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// maybeServeBackend serves the HTTP backend and exits when backendEnv is
// set; it returns otherwise.
func maybeServeBackend() {
	addr := os.Getenv(backendEnv)
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		go serveHTTPConn(c)
	}
}

func serveHTTPConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	out := make([]byte, 0, 4<<10)
	n := 0
	skip := 0 // body bytes still to discard
	for {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil && m == 0 {
			return
		}
		data := buf[:n]
		closeAfter := false
		for {
			if skip > 0 {
				k := min(skip, len(data))
				data, skip = data[k:], skip-k
				if skip > 0 {
					break
				}
			}
			end := bytes.Index(data, []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			head := data[:end+2]
			data = data[end+4:]
			body, wantClose, head0, ok := parseHead(head)
			if !ok {
				out = append(out, respBad...)
				closeAfter = true
				break
			}
			skip = body
			if wantClose {
				closeAfter = true
			}
			switch {
			case head0 && wantClose:
				out = append(out, respClose[:len(respClose)-len(httpBody)]...)
			case head0:
				out = append(out, respKeepAlive[:len(respKeepAlive)-len(httpBody)]...)
			case wantClose:
				out = append(out, respClose...)
			default:
				out = append(out, respKeepAlive...)
			}
			if closeAfter {
				break
			}
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		if closeAfter {
			// Half-close and drain briefly, so the answer is not lost to
			// an RST.
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = io.Copy(io.Discard, c)
			}
			return
		}
		// Keep the unparsed tail at the start of buf.
		n = copy(buf, data)
		if n == len(buf) {
			_, _ = c.Write(respBad)
			return
		}
	}
}

// parseHead reads a request head (request line and headers, each ending in
// CRLF): the body length to skip, whether the connection closes after the
// answer, and whether the method is HEAD.
func parseHead(head []byte) (body int, wantClose, isHead, ok bool) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return 0, true, false, false
	}
	isHead = string(line[:sp]) == "HEAD"
	switch {
	case bytes.HasSuffix(line, []byte(" HTTP/1.1")):
	case bytes.HasSuffix(line, []byte(" HTTP/1.0")):
		wantClose = true
	default:
		return 0, true, false, false
	}
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found {
			return 0, true, false, false
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "connection"):
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				wantClose = true
			}
		case asciiEqualFold(name, "content-length"):
			v, err := strconv.Atoi(string(value))
			if err != nil || v < 0 {
				return 0, true, false, false
			}
			body = v
		case asciiEqualFold(name, "transfer-encoding"):
			return 0, true, false, false // no chunked bodies in these scenarios
		}
	}
	return body, wantClose, isHead, true
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// httpBackend is the backend process, seen from the harness.
type httpBackend struct {
	p   *proc
	dir string
	a   string
}

func startHTTPBackend() (*httpBackend, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "proxynow-bench-backend-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc(dir, "http-backend", []string{"GOMAXPROCS=1", backendEnv + "=" + addr}, exe)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.waitReady(15*time.Second, httpProbe(addr, false)); err != nil {
		p.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return &httpBackend{p: p, dir: dir, a: addr}, nil
}

func (b *httpBackend) addr() string { return b.a }
func (b *httpBackend) pid() int     { return b.p.pid() }

// helperPID is the pid of b's process when it runs in one of its own.
func helperPID(b backend) int {
	if p, ok := b.(interface{ pid() int }); ok {
		return p.pid()
	}
	return 0
}

func (b *httpBackend) close() {
	b.p.stop()
	os.RemoveAll(b.dir)
}

// httpProbe succeeds once a GET / on addr (over TLS when tls is set)
// answers 200 with the backend's body.
func httpProbe(addr string, useTLS bool) func() error {
	return func() error {
		c, err := newHTTPClient(addr, useTLS, true)
		if err != nil {
			return err
		}
		defer c.close()
		return c.get()
	}
}

var errBody = errors.New("unexpected response body")
