package l7

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// respHeads are response heads (with bodies and what follows) valid and
// not, for the differential test and as the fuzzer's seed corpus.
var respHeads = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-LOWER-upper: a\r\nx-a: 1\r\nX-A: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nDate: Fri, 27 Nov 2026 05:00:00 GMT\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T, x-u\r\n\r\n2\r\nok\r\n0\r\nX-T: v\r\nX-Other: w\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nrest",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: v\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n1\r\na\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 1\r\n\r\na",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nraw until close",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nX: y\r\n\r\nuntil close",
	"HTTP/1.1 200 OK\r\n\r\nbody until the connection ends",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b \r\n\tc\r\nY: z\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n \r\n\r\n",
	"HTTP/1.1 200 OK\r\n X-Lead: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Key: v\r\nGood: w\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad(Key): v\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: empty key\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:    \r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\n\r\n",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.1  200  OK\r\n\r\n",
	"HTTP/1.1 +20 OK\r\n\r\n",
	"HTTP/1.1 -20 OK\r\n\r\n",
	"HTTP/1.1 -00 OK\r\n\r\n",
	"HTTP/1.1 099 Low\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 abc OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/0.9 200 OK\r\n\r\nold",
	"HTTP/0.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.12 200 OK\r\n\r\n",
	"HTTP/+.1 200 OK\r\n\r\n",
	"FTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 200 O\rK\r\n\r\n",
	"\r\nHTTP/1.1 200 OK\r\n\r\n",
	"",
	"HTTP/1.1 200 OK",
	"HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nA: b\r\n",
	"HTTP/1.1 200 OK\r\nA: b",
	"<html>not http</html>\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
}

// typicalResponse is a small backend response, as the benchmark rig's.
const typicalResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Fri, 27 Nov 2026 05:00:00 GMT\r\nX-Custom: 1\r\nContent-Length: 13\r\n\r\nHello, World!"

// compareResponse reads data with http.ReadResponse and readResponse, for
// a request with method, and reports any difference: with data read at
// once, and one byte per read (a head that arrives in pieces).
func compareResponse(t *testing.T, data []byte, method string) {
	t.Helper()
	compareResponseFrom(t, data, method, func(r io.Reader) io.Reader { return r })
	compareResponseFrom(t, data, method, iotest.OneByteReader)
}

func compareResponseFrom(t *testing.T, data []byte, method string, split func(io.Reader) io.Reader) {
	t.Helper()
	req := &http.Request{Method: method}
	wbr := bufio.NewReaderSize(split(bytes.NewReader(data)), h1ReadBuf)
	want, werr := http.ReadResponse(wbr, req)
	gbr := bufio.NewReaderSize(split(bytes.NewReader(data)), h1ReadBuf)
	var rb respBody
	got, gerr := readResponse(gbr, req, &rb, nil)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s %q: net/http error %v, readResponse error %v", method, data, werr, gerr)
	}
	if werr != nil {
		return
	}
	type head struct {
		Status                 string
		StatusCode             int
		Proto                  string
		ProtoMajor, ProtoMinor int
		Header, Trailer        http.Header
		ContentLength          int64
		TransferEncoding       []string
		Close, Uncompressed    bool
		Request                *http.Request
		NoBody                 bool
	}
	headOf := func(r *http.Response) head {
		return head{r.Status, r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Header, r.Trailer,
			r.ContentLength, r.TransferEncoding, r.Close, r.Uncompressed, r.Request, r.Body == http.NoBody}
	}
	if w, g := headOf(want), headOf(got); !reflect.DeepEqual(w, g) {
		t.Fatalf("%s %q:\nnet/http     %+v\nreadResponse %+v", method, data, w, g)
	}
	wb, werr := io.ReadAll(want.Body)
	gb, gerr := io.ReadAll(got.Body)
	if !bytes.Equal(wb, gb) || (werr == nil) != (gerr == nil) {
		t.Fatalf("%s %q: body %q, %v from net/http; %q, %v from readResponse", method, data, wb, werr, gb, gerr)
	}
	if !reflect.DeepEqual(want.Trailer, got.Trailer) {
		t.Fatalf("%s %q: trailer %v from net/http, %v from readResponse", method, data, want.Trailer, got.Trailer)
	}
	// What is left is the next response's: both must stop at the same byte.
	if werr == nil {
		wrest, _ := io.ReadAll(wbr)
		grest, _ := io.ReadAll(gbr)
		if !bytes.Equal(wrest, grest) {
			t.Fatalf("%s %q: %q left after net/http's body, %q after readResponse's", method, data, wrest, grest)
		}
	}
}

func TestReadResponseMatchesNetHTTP(t *testing.T) {
	for _, h := range respHeads {
		for _, m := range []string{"GET", "HEAD"} {
			compareResponse(t, []byte(h), m)
		}
	}
	// A head larger than the buffer goes to http.ReadResponse.
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", h1ReadBuf) + "\r\nContent-Length: 2\r\n\r\nok"
	compareResponse(t, []byte(big), "GET")
	// One that just fits does not.
	fill := h1ReadBuf - len("HTTP/1.1 200 OK\r\nX-Fit: \r\n\r\n")
	fit := "HTTP/1.1 200 OK\r\nX-Fit: " + strings.Repeat("f", fill) + "\r\n\r\n"
	compareResponse(t, []byte(fit), "GET")
	var rb respBody
	resp, err := readResponse(bufio.NewReaderSize(strings.NewReader(fit), h1ReadBuf), nil, &rb, nil)
	if err != nil || len(resp.Header.Get("X-Fit")) != fill || resp.Request != nil {
		t.Fatalf("a head of exactly the buffer's size: %v", err)
	}
}

// The header values share the head's one string; so do canonical keys.
func TestReadResponseAllocs(t *testing.T) {
	data := []byte(typicalResponse)
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, h1ReadBuf)
	req := &http.Request{Method: "GET"}
	var rb respBody
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(data)
		br.Reset(src)
		resp, err := readResponse(br, req, &rb, nil)
		if err != nil || resp.ContentLength != 13 {
			t.Fatal(err)
		}
	})
	// the head string, the Response with the values' array, the Header
	// map and its table (net/http: 11)
	if allocs > 4 {
		t.Fatalf("%v allocations per response, want at most 4", allocs)
	}
}

func FuzzResponseHead(f *testing.F) {
	for _, h := range respHeads {
		f.Add([]byte(h), false)
	}
	f.Add([]byte(respHeads[0]), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		m := "GET"
		if head {
			m = "HEAD"
		}
		compareResponse(t, data, m)
	})
}

// Through the transport: a head larger than the read buffer (parsed by
// http.ReadResponse) and a body that ends with the connection.
func TestH1TransportLargeHeadAndUntilClose(t *testing.T) {
	big := strings.Repeat("v", 20<<10)
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, ok := readHead(br)
			if !ok {
				return
			}
			if strings.HasPrefix(h, "GET /close ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end")
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+big+"\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	for range 2 {
		resp, body, err := h1Get(t, tr, "GET", "/big", nil)
		if err != nil || body != "ok" || resp.Header.Get("X-Big") != big {
			t.Fatalf("large head: %v %q", err, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 reused after large heads", n)
	}
	resp, body, err := h1Get(t, tr, "GET", "/close", nil)
	if err != nil || body != "until the end" || !resp.Close || resp.ContentLength != -1 {
		t.Fatalf("body until close: %v %q close=%v length %d", err, body, resp.Close, resp.ContentLength)
	}
	if _, body, err := h1Get(t, tr, "GET", "/big", nil); err != nil || body != "ok" {
		t.Fatalf("after a body until close: %v %q", err, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (none reused after a body until close)", n)
	}
}

// A Content-Length body cut short is an error, and its connection is not
// reused.
func TestH1TransportShortBody(t *testing.T) {
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()
	if _, body, err := h1Get(t, tr, "GET", "/", nil); err != io.ErrUnexpectedEOF || body != "short" {
		t.Fatalf("short body: %v %q, want io.ErrUnexpectedEOF", err, body)
	}
	tr.mu.Lock()
	n := len(tr.idle)
	tr.mu.Unlock()
	if n != 0 || conns.Load() != 1 {
		t.Fatalf("%d idle connections after a short body, want 0", n)
	}
}

// BenchmarkReadResponse compares readResponse with http.ReadResponse on a
// typical small response, body included.
func BenchmarkReadResponse(b *testing.B) {
	data := []byte(typicalResponse)
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, h1ReadBuf)
	req := &http.Request{Method: "GET"}
	buf := make([]byte, 64)
	run := func(b *testing.B, read func() (*http.Response, error)) {
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			br.Reset(src)
			resp, err := read()
			if err != nil {
				b.Fatal(err)
			}
			if n, _ := io.ReadFull(resp.Body, buf[:13]); n != 13 {
				b.Fatal("short body")
			}
		}
	}
	b.Run("net-http", func(b *testing.B) { run(b, func() (*http.Response, error) { return http.ReadResponse(br, req) }) })
	var rb respBody
	b.Run("h1t", func(b *testing.B) { run(b, func() (*http.Response, error) { return readResponse(br, req, &rb, nil) }) })
}
