package tlsmux

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/proxynow/proxynow/l4"
)

// BenchmarkPeek is the Mux's peek of a whole ClientHello: buffer handling
// and parsing, without the socket (the bytes come from the Conn's Prefix,
// as after a PROXY header). Allocations beyond the pooled read buffer must
// be zero.
func BenchmarkPeek(b *testing.B) {
	files, _ := filepath.Glob("testdata/clienthello/*.bin")
	if len(files) == 0 {
		b.Skip("no corpus")
	}
	m, err := New(Options{Routes: []Route{{Name: "p", Mode: Plain}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				c := l4.Conn{Prefix: data}
				bp := peekBufs.Get().(*[]byte)
				var h ClientHello
				if _, err := m.peek(&c, bp, &h); err != nil {
					b.Fatal(err)
				}
				if m.table.match(&h) != nil {
					b.Fatal("matched")
				}
				*bp = (*bp)[:0]
				peekBufs.Put(bp)
			}
		})
	}
}

// BenchmarkPassthroughBulk moves 1 MiB per op over TLS from a client to a
// TLS sink, directly and through a passthrough route: after the peek the
// proxy splices raw sockets, so the ratio is the proxy's cost.
func BenchmarkPassthroughBulk(b *testing.B) {
	ca := newCA(b)
	c, k := ca.issue(b, b.TempDir(), "ecdsa", "a.test")
	sink := serve(b, tls.NewListener(listen(b), &tls.Config{Certificates: []tls.Certificate{serverCert(b, c, k)}}),
		func(c net.Conn) {
			buf := make([]byte, 1<<20)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		})
	chunk := make([]byte, 1<<20)
	run := func(b *testing.B, addr string) {
		tc, err := dialTLS(b, addr, &tls.Config{ServerName: "a.test", RootCAs: ca.pool})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(chunk)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tc.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, sink) })
	b.Run("passthrough", func(b *testing.B) {
		addr, _ := startMux(b, Options{Routes: []Route{{Name: "a", SNI: []string{"a.test"}, Mode: Passthrough, Handler: proxyTo(b, sink)}}})
		run(b, addr)
	})
}
