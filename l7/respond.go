package l7

import (
	"io"
	"net/http"
	"strconv"

	"github.com/proxynow/proxynow/config"
)

// Respond is the handler of a service with a respond block: the same
// status, headers and body for every request.
type Respond struct {
	status  int
	body    []byte
	headers http.Header
	length  string
}

// NewRespond builds the handler once, at load time.
func NewRespond(c *config.Respond) *Respond {
	r := &Respond{status: c.Status, body: []byte(c.Body), headers: http.Header{}, length: strconv.Itoa(len(c.Body))}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	for k, v := range c.Headers {
		r.headers.Set(k, v)
	}
	if r.headers.Get("Content-Type") == "" && len(r.body) > 0 {
		r.headers.Set("Content-Type", "text/plain; charset=utf-8")
	}
	return r
}

// drainLimit bounds the request body Respond reads before answering: a
// client still sending (an HTTP/2 stream's DATA) then sees its request
// consumed rather than its stream reset by an early answer.
const drainLimit = 64 << 10

func (s *Respond) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		_, _ = io.CopyN(io.Discard, r.Body, drainLimit)
	}
	h := w.Header()
	for k, v := range s.headers {
		h[k] = v
	}
	noBody := r.Method == http.MethodHead || s.status == http.StatusNoContent || s.status == http.StatusNotModified || s.status < 200
	if !noBody || r.Method == http.MethodHead {
		h["Content-Length"] = []string{s.length}
	}
	w.WriteHeader(s.status)
	if !noBody {
		_, _ = w.Write(s.body)
	}
}
