package l7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// guardFakeConn feeds in to Read in pieces of at most the sizes that next
// returns; with loop set it starts over instead of reporting io.EOF.
type guardFakeConn struct {
	net.Conn // nil: the methods the guard does not use here
	in       []byte
	off      int
	loop     bool
	next     func() int
	out      bytes.Buffer
}

func (c *guardFakeConn) Read(p []byte) (int, error) {
	if c.off == len(c.in) {
		if !c.loop || len(c.in) == 0 {
			return 0, io.EOF
		}
		c.off = 0
	}
	n := min(len(p), len(c.in)-c.off)
	if c.next != nil {
		n = min(n, max(1, c.next()))
	}
	copy(p, c.in[c.off:c.off+n])
	c.off += n
	return n, nil
}

func (c *guardFakeConn) Write(p []byte) (int, error)         { return c.out.Write(p) }
func (c *guardFakeConn) Close() error                        { return nil }
func (c *guardFakeConn) SetReadDeadline(time.Time) error     { return nil }
func (c *guardFakeConn) SetWriteDeadline(time.Time) error    { return nil }
func (c *guardFakeConn) SetDeadline(time.Time) error         { return nil }
func (c *guardFakeConn) RemoteAddr() net.Addr                { return &net.TCPAddr{} }
func (c *guardFakeConn) LocalAddr() net.Addr                 { return &net.TCPAddr{} }
func (c *guardFakeConn) SetReadBuffer(int) error             { return nil }
func (c *guardFakeConn) String() string                      { return "fake" }
func (c *guardFakeConn) setNext(f func() int) *guardFakeConn { c.next = f; return c }

// guardRun reads in through a guard, with the inner conn returning pieces
// of sizes from inner and Read called with buffers of sizes from outer (nil:
// all at once). It returns what the guard delivered and its verdict.
func guardRun(in []byte, maxHead int, inner, outer func() int) (delivered []byte, verdict error) {
	ln := NewGuardListener(nil, GuardOptions{MaxHead: maxHead})
	g := ln.Guard((&guardFakeConn{in: in}).setNext(inner)).(*guardConn)
	buf := make([]byte, len(in)+1)
	for {
		p := buf
		if outer != nil {
			p = buf[:max(1, min(len(buf), outer()))]
		}
		n, err := g.Read(p)
		delivered = append(delivered, p[:n]...)
		if err != nil {
			return delivered, g.Violation()
		}
	}
}

func guardRandSizes(seed uint64, maxSize int) func() int {
	r := mrand.New(mrand.NewPCG(seed, 1))
	return func() int { return 1 + r.IntN(maxSize) }
}

// TestGuardChunking: the verdict and the bytes delivered do not depend on how
// the input arrives or how it is read.
func TestGuardChunking(t *testing.T) {
	for _, v := range guardVectors {
		t.Run(v.name, func(t *testing.T) {
			in := []byte(v.raw + gFollo)
			want, wantErr := guardRun(in, v.maxHead, nil, nil)
			if (wantErr != nil) != (v.bad != "") {
				t.Fatalf("verdict %v, want bad=%q", wantErr, v.bad)
			}
			if wantErr == nil && !bytes.Equal(want, in) {
				t.Fatalf("valid stream delivered %q", want)
			}
			for seed := range uint64(50) {
				got, err := guardRun(in, v.maxHead, guardRandSizes(seed, 1+int(seed%7)*3), guardRandSizes(seed+100, 1+int(seed%5)*20))
				if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("seed %d: delivered %q, %v; want %q, %v", seed, got, err, want, wantErr)
				}
			}
		})
	}
}

// TestGuardStopsChecking: after the HTTP/2 preface or a request to switch
// protocols, bytes pass unchecked.
func TestGuardStopsChecking(t *testing.T) {
	junk := "\x00\x00\x12\x04\x00\x00\x00\x00\x00 not HTTP/1 \n\r\x00"
	for _, in := range []string{
		guardPreface + junk,
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n" + junk,
		"POST /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c, foo\r\nContent-Length: 3\r\n\r\nabc" + junk,
	} {
		got, err := guardRun([]byte(in), 0, guardRandSizes(1, 5), nil)
		if err != nil || string(got) != in {
			t.Errorf("%q: delivered %q, %v", in, got, err)
		}
	}
	// Upgrade: h2c alone, or Upgrade without Connection: upgrade, keeps the checks.
	for _, in := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + junk,
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgraded\r\nUpgrade: websocket\r\n\r\n" + junk,
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r" + junk,
	} {
		if _, err := guardRun([]byte(in), 0, nil, nil); err == nil {
			t.Errorf("%q: no violation", in)
		}
	}
}

// TestGuardPipelinedContext: a valid request pipelined before a bad one is
// served with a live context (the guard does not fake an EOF on net/http's
// background read), then the 400 follows its answer.
func TestGuardPipelinedContext(t *testing.T) {
	ctxErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		ctxErr <- r.Context().Err()
		io.WriteString(w, "slow")
	})
	addr, _, _ := guardServer(t, h, GuardOptions{})
	got, stream := guardExchange(t, addr, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"+gPost+"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"+gFollo)
	if err := <-ctxErr; err != nil {
		t.Errorf("context of the valid request: %v", err)
	}
	if len(got) != 2 || got[0] != "200 " || got[1] != "400 " || !bytes.HasSuffix(stream, []byte(guardReject)) {
		t.Errorf("answers %q, stream %q", got, stream)
	}
}

// TestGuardBodyViolationMutes: what a handler answers to a request whose body
// turned out malformed is dropped; the client gets the 400 alone.
func TestGuardBodyViolationMutes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // error ignored
		io.WriteString(w, "handler answer")
	})
	addr, _, closed := guardServer(t, h, GuardOptions{})
	_, stream := guardExchange(t, addr, gTE+"5\r\nhello\r\nzz\r\n"+gFollo)
	if string(stream) != guardReject {
		t.Errorf("stream %q, want the 400 alone", stream)
	}
	if err := <-closed; !errors.Is(err, ErrMalformedRequest) {
		t.Errorf("violation %v", err)
	}
}

// guardTLSListener hands out server-side *tls.Conns with the handshake done,
// as tlsmux does.
type guardTLSListener struct {
	net.Listener
	cfg *tls.Config
}

func (l guardTLSListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := tls.Server(c, l.cfg)
		if tc.HandshakeContext(context.Background()) == nil {
			return tc, nil
		}
		tc.Close()
	}
}

func guardTestCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestGuardTLS: HTTP/1.1 over TLS is guarded and still has Request.TLS and
// TLSState; h2 connections are left alone; plaintext has no TLS state.
func TestGuardTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{guardTestCert(t)}, NextProtos: []string{"h2", "http/1.1"}}
	type connKey struct{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, _ := r.Context().Value(connKey{}).(*tls.ConnectionState)
			fmt.Fprintf(w, "%s tls=%v state=%v", r.Proto, r.TLS != nil, st != nil && st.HandshakeComplete)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, TLSState(c))
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(GuardListener(guardTLSListener{ln, cfg})) }()
	defer func() { srv.Close(); <-done }()

	for _, tc := range []struct{ name, want string }{
		{"http/1.1", "HTTP/1.1 tls=true state=true"},
		{"h2", "HTTP/2.0 tls=true state=true"},
	} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{tc.name}}, ForceAttemptHTTP2: tc.name == "h2"}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if !strings.HasPrefix(string(body), tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, body, tc.want)
		}
	}
	if st := TLSState(&guardFakeConn{}); st != nil {
		t.Errorf("TLSState(plaintext) = %v", st)
	}
	if g := GuardListener(nil).(*GuardedListener).Guard(&guardFakeConn{}); TLSState(g) != nil {
		t.Errorf("TLSState(guarded plaintext) != nil")
	} else if _, ok := g.(interface{ ConnectionState() tls.ConnectionState }); ok {
		t.Errorf("guarded plaintext conn has ConnectionState: net/http would set Request.TLS")
	}
}

// TestGuardH2C: HTTP/2 with prior knowledge passes the guard untouched.
func TestGuardH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(GuardListener(ln)) }()
	defer func() { srv.Close(); <-done }()

	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp}
	defer tr.CloseIdleConnections()
	for range 2 {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "HTTP/2.0" {
			t.Errorf("proto %q", body)
		}
	}
}

// FuzzGuard: any input, read in any pieces, gives the same verdict and the
// same delivered bytes, a prefix of the input.
func FuzzGuard(f *testing.F) {
	for _, v := range guardVectors {
		f.Add([]byte(v.raw+gFollo), uint64(len(v.name)))
	}
	f.Add([]byte(guardPreface+"junk"), uint64(1))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		want, wantErr := guardRun(in, 512, nil, nil)
		if !bytes.HasPrefix(in, want) {
			t.Fatalf("delivered %q is not a prefix of the input", want)
		}
		got, err := guardRun(in, 512, guardRandSizes(seed, 1+int(seed%64)), guardRandSizes(seed^0x5bd1e995, 1+int(seed%300)))
		if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("chunked: delivered %q, %v; whole: %q, %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkGuardRead reads a keep-alive stream of typical GETs and a 1 MiB
// chunked upload through a guarded connection (and unguarded, for the cost of
// the copy alone), in the buffer sizes net/http uses.
func BenchmarkGuardRead(b *testing.B) {
	var gets bytes.Buffer
	for i := range 64 {
		fmt.Fprintf(&gets, "GET /static/app-%d.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n"+
			"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nReferer: https://www.example.com/\r\nCookie: session=0123456789abcdef; theme=dark\r\nConnection: keep-alive\r\n\r\n", i)
	}
	var chunked bytes.Buffer
	chunked.WriteString("POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for range 64 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	chunked.WriteString("0\r\n\r\n")

	for _, bc := range []struct {
		name   string
		stream []byte
		bufLen int
	}{{"keepalive-get", gets.Bytes(), 4096}, {"chunked-1MiB", chunked.Bytes(), 32 << 10}} {
		for _, guarded := range []bool{true, false} {
			name := bc.name
			if !guarded {
				name += "/unguarded"
			}
			b.Run(name, func(b *testing.B) {
				var c net.Conn = &guardFakeConn{in: bc.stream, loop: true}
				if guarded {
					c = NewGuardListener(nil, GuardOptions{}).Guard(c)
				}
				buf := make([]byte, bc.bufLen)
				r := bufio.NewReaderSize(c, bc.bufLen) // net/http reads heads through a bufio.Reader
				b.SetBytes(int64(len(bc.stream)))
				b.ReportAllocs()
				for b.Loop() {
					for left := len(bc.stream); left > 0; {
						n, err := r.Read(buf[:min(len(buf), left)])
						if err != nil {
							b.Fatal(err)
						}
						left -= n
					}
				}
				if v := GuardViolation(c); v != nil {
					b.Fatal(v)
				}
			})
		}
	}
}
