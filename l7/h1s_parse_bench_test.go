package l7

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkH1ReadRequest reads typical keep-alive GET heads (CRLF line
// endings) from a buffered stream into requests: readHead and
// parseRequest, the server's per-request parsing, without a socket.
func BenchmarkH1ReadRequest(b *testing.B) { benchReadRequest(b, "\r\n") }

// BenchmarkH1ReadRequestBareLF is BenchmarkH1ReadRequest with bare-LF
// line endings: the slower path a connection takes once it sent one.
func BenchmarkH1ReadRequestBareLF(b *testing.B) { benchReadRequest(b, "\n") }

func benchReadRequest(b *testing.B, eol string) {
	var stream bytes.Buffer
	for i := range 64 {
		head := fmt.Sprintf("GET /static/app-%d.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n"+
			"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nReferer: https://www.example.com/\r\nCookie: session=0123456789abcdef; theme=dark\r\nConnection: keep-alive\r\n\r\n", i)
		stream.WriteString(strings.ReplaceAll(head, "\r\n", eol))
	}
	c := &h1conn{s: &h1Server{maxHead: 1 << 20}, ctx: context.Background(), remote: "192.0.2.1:1234"}
	c.bareLF = &c.noLF
	if eol == "\n" {
		c.noLF = true // what the guard's scanner says of such a stream
	}
	c.br = bufio.NewReaderSize(&guardFakeConn{in: stream.Bytes(), loop: true}, h1sReadBuf)
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := c.readRequest(false)
		if err != nil || r.Host != "www.example.com" {
			b.Fatal(r, err)
		}
	}
}
