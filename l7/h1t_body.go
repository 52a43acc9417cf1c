package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/textproto"
)

// respBody reads a response body framed by readResponse, with the
// semantics of net/http's body: a Content-Length body that ends early is
// io.ErrUnexpectedEOF and its last bytes come with io.EOF; a chunked body
// ends with its trailer section, read into the Response's Trailer. It
// neither closes nor drains the connection (h1Body decides that); reads
// after the end are h1Body's business too.
type respBody struct {
	br   *bufio.Reader
	resp *http.Response
	kind bodyKind
	n    int64     // bytes left (bodyLength)
	cr   io.Reader // the chunked decoder, made on first read
}

type bodyKind uint8

const (
	bodyLength     bodyKind = iota + 1 // Content-Length
	bodyChunked                        // Transfer-Encoding: chunked
	bodyUntilClose                     // neither: the connection's end
)

func (b *respBody) Read(p []byte) (n int, err error) {
	switch b.kind {
	case bodyLength:
		if b.n <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.br.Read(p)
		b.n -= int64(n)
		switch {
		case err == io.EOF && b.n > 0:
			err = io.ErrUnexpectedEOF
		case err == nil && n > 0 && b.n == 0:
			err = io.EOF
		}
		return n, err
	case bodyChunked:
		if b.cr == nil {
			b.cr = httputil.NewChunkedReader(b.br)
		}
		n, err = b.cr.Read(p)
		if err == io.EOF {
			if e := readTrailer(b.br, b.resp); e != nil {
				err = e
			}
		}
		return n, err
	default:
		return b.br.Read(p)
	}
}

// Close does nothing: h1Body closes or pools the connection.
func (b *respBody) Close() error { return nil }

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

// readTrailer is net/http's body.readTrailer: the section after the last
// chunk, bounded by the reader's buffer, merged into resp.Trailer.
func readTrailer(br *bufio.Reader, resp *http.Response) error {
	buf, err := br.Peek(2)
	if len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	// A terminator must be in sight, or the trailer could grow without
	// bound: Peek stops at the buffer's size.
	found := false
	for size := 4; ; size++ {
		buf, err := br.Peek(size)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			found = true
			break
		}
		if err != nil {
			break
		}
	}
	if !found {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if resp.Trailer == nil {
		resp.Trailer = http.Header(hdr)
	} else {
		maps.Copy(resp.Trailer, http.Header(hdr))
	}
	return nil
}
