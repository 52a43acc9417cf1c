package l7

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Requests to HTTP/2 backends go out of net/http's bundled HTTP/2 transport
// (not x/net's) without HPACK's dynamic table: http.HTTP2Config's
// MaxEncoderHeaderTableSize must reach that encoder. The backend here is a
// raw HTTP/2 server that keeps the header blocks it receives: n requests
// through the proxy, all with the same path and field, arrive on one
// backend connection, and no block adds an entry to the table or refers
// to one (an indexing encoder sends the second request's X-Same as a
// one-byte index). Every block also decodes with a decoder that enforces
// the table size updates' rules (RFC 7541 §4.2, §6.3). h2c and https
// (ALPN h2) go through the same transport settings, both are checked.
func TestH2BackendRequestsNotIndexed(t *testing.T) {
	for _, scheme := range []string{"h2c", "https"} {
		t.Run(scheme, func(t *testing.T) {
			const n = 4
			be := startRawH2Backend(t, scheme == "https")
			svc := svcFor(scheme + "://" + be.addr)
			if scheme == "https" {
				svc.Backends[0].TLS = true
				svc.TLS = &config.BackendTLS{InsecureSkipVerify: true}
			}
			px, _ := newTestProxy(t, svc)
			front := serveEntry(t, px, false)
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for i := range n {
				fmt.Fprintf(c, "GET /same/path HTTP/1.1\r\nHost: x\r\nX-Same: the same value each time\r\nX-Seq: %d\r\n\r\n", i)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "ok" {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
				}
			}
			blocks, conns := be.result()
			// Counted are the connections that carried a request: under
			// load net/http's transport may dial one it then never uses.
			if conns != 1 {
				t.Fatalf("requests came on %d backend connections, want 1 (the blocks must share an encoder)", conns)
			}
			if len(blocks) != n {
				t.Fatalf("%d request header blocks, want %d", len(blocks), n)
			}
			dec := hpack.NewDecoder(4096, nil)
			for i, b := range blocks {
				checkNotIndexed(t, b)
				fields, err := dec.DecodeFull(b)
				if err != nil {
					t.Fatalf("block %d: %v", i, err)
				}
				got := map[string]string{}
				for _, f := range fields {
					got[f.Name] = f.Value
				}
				if got[":path"] != "/same/path" || got["x-same"] != "the same value each time" || got["x-seq"] != fmt.Sprint(i) {
					t.Fatalf("block %d decodes to %v", i, got)
				}
			}
		})
	}
}

// rawH2Backend answers every HTTP/2 request 200 "ok" and keeps each
// request's whole header block, and counts the connections that carried
// one.
type rawH2Backend struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	conns  int // connections that carried a request
	open   []net.Conn
	blocks [][]byte
}

func startRawH2Backend(t *testing.T, useTLS bool) *rawH2Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{guardTestCert(t)}, NextProtos: []string{"h2"}})
	}
	b := &rawH2Backend{addr: ln.Addr().String(), ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.open = append(b.open, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *rawH2Backend) result() ([][]byte, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocks, b.conns
}

func (b *rawH2Backend) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(time.Minute))
	pre := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, pre); err != nil || string(pre) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	var (
		resp   []byte
		henc   = hpack.NewEncoder(&byteSink{&resp})
		block  []byte
		served bool
	)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		var end bool
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
			continue
		case *http2.HeadersFrame:
			block = append(block[:0], f.HeaderBlockFragment()...)
			end = f.HeadersEnded()
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			end = f.HeadersEnded()
		default:
			continue
		}
		if !end {
			continue
		}
		b.mu.Lock()
		b.blocks = append(b.blocks, append([]byte(nil), block...))
		if !served {
			served = true
			b.conns++
		}
		b.mu.Unlock()
		resp = resp[:0]
		henc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		henc.WriteField(hpack.HeaderField{Name: "content-length", Value: "2"})
		id := f.Header().StreamID
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: resp, EndHeaders: true}) != nil ||
			fr.WriteData(id, true, []byte("ok")) != nil {
			return
		}
	}
}
