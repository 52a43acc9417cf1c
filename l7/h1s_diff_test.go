package l7

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The differential test of the HTTP/1 server: the same raw bytes go to
// net/http's server behind the guard (the path proxynow used before) and to
// l7.Server (its own HTTP/1 server), both running diffHandler; what the
// handler saw and what the client got back must match, but for the
// differences allowed explicitly (allowedDiff, the cases' notes).

// diffRecord is what the handler saw of one request.
type diffRecord struct {
	Method, Path, RawPath, RawQuery string
	ForceQuery                      bool
	URLScheme, URLHost, URLOpaque   string
	RequestURI, Proto               string
	ProtoMajor, ProtoMinor          int
	Host                            string
	Header                          http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	Body                            string
	BodyErr                         bool
	Trailer                         http.Header
	TLSNil, RemoteOK, LocalAddrOK   bool
	WriteErrs                       []string // errors of the handler's writes, in order
	remote                          string   // to tell the cases apart (not compared)
	BodyReadAfter                   string   // for /readafter: the error of a read after EOF and Close
}

type diffRecorder struct {
	mu      sync.Mutex
	recs    []*diffRecord
	discard bool // keep no records (the fuzz target)
}

// takeAll returns every record and forgets them.
func (d *diffRecorder) takeAll() []*diffRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.recs
	d.recs = nil
	return r
}

// take returns the records of the requests from client address remote
// and forgets them. A handler may still run after its case ended (the
// client gave up on a response it could not parse): its record must not
// count for the next case, nor for a later connection that reuses the
// client port (runDiffCase also drops all records before a case).
func (d *diffRecorder) take(remote string) []*diffRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	var r []*diffRecord
	keep := d.recs[:0]
	for _, rec := range d.recs {
		if rec.remote == remote {
			r = append(r, rec)
		} else {
			keep = append(keep, rec)
		}
	}
	clear(d.recs[len(keep):])
	d.recs = keep
	return r
}

// note appends a write's outcome to rec (under the lock: the test reads the
// records once the response is in).
func (d *diffRecorder) note(rec *diffRecord, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := "<nil>"
	if err != nil {
		s = err.Error()
	}
	rec.WriteErrs = append(rec.WriteErrs, s)
}

// diffBig is /big's body: 100 KiB, not repetitive enough to hide a
// misplaced piece.
var diffBig = func() []byte {
	b := make([]byte, 100<<10)
	for i := range b {
		b[i] = byte('a' + (i*7+i/1024)%26)
	}
	return b
}()

func (d *diffRecorder) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &diffRecord{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
			ForceQuery: r.URL.ForceQuery, URLScheme: r.URL.Scheme, URLHost: r.URL.Host, URLOpaque: r.URL.Opaque,
			RequestURI: r.RequestURI, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
			Host: r.Host, Header: r.Header.Clone(), ContentLength: r.ContentLength,
			TransferEncoding: r.TransferEncoding, Close: r.Close, TLSNil: r.TLS == nil, remote: r.RemoteAddr}
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().IsLoopback() && ap.Port() != 0 {
			rec.RemoteOK = true
		}
		_, rec.LocalAddrOK = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		path := r.URL.Path
		if path != "/noread" && path != "/hijack" && path != "/flushread" {
			b, err := io.ReadAll(r.Body)
			rec.Body, rec.BodyErr = short(b), err != nil
			rec.Trailer = r.Trailer.Clone()
		}
		if path == "/probe" {
			// The test's own request, to learn whether a connection is open.
			w.Write([]byte("probe"))
			return
		}
		d.mu.Lock()
		if !d.discard {
			d.recs = append(d.recs, rec)
		}
		d.mu.Unlock()
		write := func(s string) { _, err := io.WriteString(w, s); d.note(rec, err) }
		switch {
		case path == "/cl":
			w.Header().Set("Content-Length", "5")
			write("hello")
		case path == "/nolen":
			write("abc")
		case path == "/big":
			for p := diffBig; len(p) > 0; p = p[10<<10:] {
				write(string(p[:10<<10]))
			}
		case path == "/flush":
			write("a")
			w.(http.Flusher).Flush()
			write("b")
		case path == "/flushread":
			// The response starts before the body is read (the 100 Continue
			// a client may wait for is not sent then).
			w.(http.Flusher).Flush()
			b, err := io.ReadAll(r.Body)
			d.mu.Lock()
			rec.Body, rec.BodyErr = string(b), err != nil
			d.mu.Unlock()
			write("read")
		case path == "/trailer":
			w.Header().Set("Trailer", "X-T, X-U")
			write("body")
			w.Header().Set("X-T", "tv")
			w.Header().Set("X-U", "uv")
		case path == "/prefix-trailer":
			write("body")
			w.Header().Set(http.TrailerPrefix+"X-P", "pv")
		case path == "/head-check":
			w.Header().Set("Content-Type", "text/x-head")
			write("0123456789")
		case path == "/204":
			w.WriteHeader(http.StatusNoContent)
			write("x")
		case path == "/304":
			w.Header().Set("ETag", `"e"`)
			w.Header().Set("Content-Length", "9")
			w.WriteHeader(http.StatusNotModified)
			write("x")
		case path == "/1xx":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Final", "1")
			write("ok")
		case path == "/close":
			w.Header().Set("Connection", "close")
			write("bye")
		case path == "/panic":
			panic("diff test panic")
		case path == "/abort":
			panic(http.ErrAbortHandler)
		case path == "/panicafter":
			write("partial")
			panic(http.ErrAbortHandler)
		case path == "/noread":
			write("noread")
		case path == "/hijack":
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				d.note(rec, err)
				return
			}
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhijack")
			brw.Flush()
			c.Close()
		case path == "/expect":
			write("expect")
		case path == "/shortcl":
			w.Header().Set("Content-Length", "10")
			write("abc")
		case path == "/longcl":
			w.Header().Set("Content-Length", "2")
			write("abcde")
		case path == "/sniff":
			write("<html><body>hi</body></html>")
		case path == "/empty":
		case path == "/multi":
			w.Header()["X-Multi"] = []string{"a", "b"}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("x-lower", "v") // a non-canonical key, written as is
			write("multi")
		case path == "/te-set":
			// The handler asks for chunking itself (net/http honours it).
			w.Header().Set("Transfer-Encoding", "chunked")
			write("te")
		case path == "/error":
			http.Error(w, "nope", http.StatusTeapot)
		case path == "/readafter":
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			d.mu.Lock()
			rec.BodyReadAfter = fmt.Sprint(err)
			d.mu.Unlock()
			write("ra")
		case strings.HasPrefix(path, "/status/"):
			code, _ := strconv.Atoi(path[len("/status/"):])
			w.WriteHeader(code)
			write("s")
		default:
			write("default")
		}
	})
}

// diffServers runs the old and the new path on loopback listeners.
type diffServers struct {
	oldAddr, newAddr string
	oldRec, newRec   *diffRecorder
}

func startDiffServers(t testing.TB) *diffServers {
	t.Helper()
	lnOld, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnNew, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startDiffServersOn(t, lnOld, lnNew)
}

func startDiffServersOn(t testing.TB, lnOld, lnNew net.Listener) *diffServers {
	d := &diffServers{oldRec: &diffRecorder{}, newRec: &diffRecorder{}}
	d.oldAddr, d.newAddr = lnOld.Addr().String(), lnNew.Addr().String()
	// net/http's Close does not wait for its connections' goroutines (one
	// may sleep 500 ms in closeWriteAndWait after an error reply): count
	// them, so that the cleanup can, and goleak finds none left.
	var conns sync.WaitGroup
	old := &http.Server{Handler: d.oldRec.handler(), ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				conns.Done()
			}
		}}
	srv := NewServer(ServerOptions{Handler: d.newRec.handler()})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); old.Serve(NewGuardListener(lnOld, GuardOptions{})) }()
	go func() { defer wg.Done(); srv.Serve(lnNew) }()
	t.Cleanup(func() {
		old.Close()
		srv.Close()
		wg.Wait()
		conns.Wait()
	})
	return d
}

// diffResp is one response as the client read it, normalised: the Date
// value dropped (its presence kept), framing as http.ReadResponse saw it.
type diffResp struct {
	Proto, Status    string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	Body             string
	BodyErr          string
	Trailer          http.Header
	method           string // the request's (not compared)
}

// diffRound is what one round of a case produced.
type diffRound struct {
	Resps  []diffResp
	Extra  string // bytes after a response that announced the close
	Closed bool   // the connection ended before or after these responses
	Stall  bool   // the server neither answered nor closed in time
}

// diffTimeout bounds every read of an exchange: generous, since only a
// server that hangs reaches it.
const diffTimeout = 10 * time.Second

// exchange runs case c against addr: its bytes, then (if the connection
// is open) its bytes again, then a probe request that tells whether the
// connection is still open.
func exchange(t *testing.T, addr string, c diffCase) (rounds []diffRound, local string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local = conn.LocalAddr().String()
	br := bufio.NewReaderSize(conn, 64<<10)
	for round := range 2 {
		if round == 1 && c.once {
			break
		}
		for i, p := range c.parts {
			if i > 0 {
				// Separate writes, so that the server reads them apart
				// (nothing depends on it: either way is valid input).
				time.Sleep(5 * time.Millisecond)
			}
			conn.SetWriteDeadline(time.Now().Add(diffTimeout))
			if _, err := io.WriteString(conn, p); err != nil {
				rounds = append(rounds, diffRound{Closed: true})
				return rounds, local
			}
		}
		if c.closeWrite {
			conn.(*net.TCPConn).CloseWrite()
		}
		rd := readResponses(br, conn, requestMethods(c.raw()), c.n, c.timeout())
		rounds = append(rounds, rd)
		if rd.Closed || rd.Stall || c.closeWrite {
			return rounds, local
		}
	}
	io.WriteString(conn, "GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n")
	rd := readResponses(br, conn, []string{"GET"}, 1, c.timeout())
	rounds = append(rounds, diffRound{Closed: rd.Closed || len(rd.Resps) == 0, Stall: rd.Stall})
	return rounds, local
}

// requestMethods lists the methods of the requests in raw, in order (GET
// where raw cannot be parsed), for reading HEAD responses right.
func requestMethods(raw string) []string {
	var ms []string
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return ms
		}
		ms = append(ms, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return ms
		}
	}
}

// readResponses reads up to n final responses (1xx ones are kept and not
// counted), stopping early when the connection ends. After a response that
// announces the close (Connection: close, or an HTTP/1.0 one without
// keep-alive) it reads on to the end: what the server sends after it, if
// anything, is kept as Extra.
func readResponses(br *bufio.Reader, conn net.Conn, methods []string, n int, timeout time.Duration) diffRound {
	var rd diffRound
	for i := 0; i < n; {
		conn.SetReadDeadline(time.Now().Add(timeout))
		m := "GET"
		if i < len(methods) {
			m = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rd.Stall = true
			} else {
				rd.Closed = true
			}
			return rd
		}
		body, berr := io.ReadAll(resp.Body)
		h := resp.Header.Clone()
		if _, ok := h["Date"]; ok {
			h["Date"] = []string{"<date>"}
		}
		r := diffResp{Proto: resp.Proto, Status: resp.Status, Header: h, ContentLength: resp.ContentLength,
			TransferEncoding: resp.TransferEncoding, Close: resp.Close, Body: short(body), Trailer: resp.Trailer, method: m}
		if berr != nil {
			r.BodyErr = berr.Error()
		}
		rd.Resps = append(rd.Resps, r)
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			i++
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || berr != nil {
			rd.Closed = berr != nil
			return rd
		}
		if resp.Close && resp.StatusCode >= 200 {
			// A client would not send on; the server must close.
			conn.SetReadDeadline(time.Now().Add(timeout))
			rest, err := io.ReadAll(br)
			rd.Extra = short(rest)
			var ne net.Error
			rd.Closed = !errors.As(err, &ne) || !ne.Timeout()
			rd.Stall = !rd.Closed
			return rd
		}
	}
	return rd
}

// serverError reports whether r is the server's own answer to a request it
// could not take (net/http's "400 Bad Request: ..." or the guard's), not a
// handler's.
func serverError(r *diffResp) bool {
	code, _ := strconv.Atoi(r.Status[:3])
	return code >= 400 && strings.HasPrefix(r.Body, r.Status[:3]+" "+http.StatusText(code))
}

// allowedDiff normalises the differences between the old and the new path
// that are intended, on both sides alike.
func allowedDiff(rd *diffRound) {
	for i := range rd.Resps {
		r := &rd.Resps[i]
		if serverError(r) {
			// The server's own error replies: net/http writes no
			// Content-Length (the body runs to the close), puts its reason
			// in the status line and the body ("400 Bad Request: missing
			// required Host header"); the new server says why in the body
			// only, in its own words, and frames it with Content-Length.
			// The status code, Connection: close and Content-Type are
			// compared.
			r.Status = r.Status[:3]
			r.Body = r.Status
			r.ContentLength = -1
			delete(r.Header, "Content-Length")
			// net/http adds X-Content-Type-Options: nosniff on some
			// (431), the new server on none.
			delete(r.Header, "X-Content-Type-Options")
		}
		if r.Proto == "HTTP/1.0" && r.Close && len(r.Header["Connection"]) == 1 && r.Header["Connection"][0] == "close" {
			// An HTTP/1.0 response closes unless it says keep-alive: the
			// new server says "Connection: close" anyway, net/http does
			// not. The client cannot tell the difference.
			delete(r.Header, "Connection")
		}
	}
}

// short is b, or its length and hash when it is long (a readable diff).
func short(b []byte) string {
	if len(b) <= 256 {
		return string(b)
	}
	return fmt.Sprintf("<%d bytes, sha256 %x>", len(b), sha256.Sum256(b))
}

// lineDiff shows the lines of a and b that differ (an LCS diff; the
// inputs are small).
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	l := make([][]int, len(x)+1)
	for i := range l {
		l[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i++
			j++
		case j < len(y) && (i == len(x) || l[i][j+1] >= l[i+1][j]):
			fmt.Fprintf(&out, "  new %4d: %s\n", j, y[j])
			j++
		default:
			fmt.Fprintf(&out, "  old %4d: %s\n", i, x[i])
			i++
		}
	}
	return out.String()
}

func jsonOf(v any) string {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestH1ServerDiff runs the table with the known bugs hidden (their
// cases skipped or normalised): every other difference fails it.
func TestH1ServerDiff(t *testing.T) {
	d := startDiffServers(t)
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) {
			for _, b := range knownBugsOf(c.name) {
				if b.norm == nil && b.normRec == nil && !*h1sRunBugs {
					t.Skip("BUG: " + b.desc + " (TestH1ServerBugs shows it)")
				}
			}
			runDiffCase(t, d, c, !*h1sRunBugs)
		})
	}
}

// TestH1ServerBugs runs the cases of the known bugs as they are: each
// fails until its bug is fixed (then its h1sKnownBugs entry goes).
func TestH1ServerBugs(t *testing.T) {
	d := startDiffServers(t)
	for _, c := range diffCases() {
		if len(knownBugsOf(c.name)) == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) { runDiffCase(t, d, c, false) })
	}
}

func runDiffCase(t *testing.T, d *diffServers, c diffCase, hideBugs bool) {
	d.oldRec.takeAll()
	d.newRec.takeAll()
	oldRounds, oldLocal := exchange(t, d.oldAddr, c)
	newRounds, newLocal := exchange(t, d.newAddr, c)
	oldRecs, newRecs := d.oldRec.take(oldLocal), d.newRec.take(newLocal)
	compareDiff(t, c, oldRounds, newRounds, oldRecs, newRecs, hideBugs)
}

func compareDiff(t *testing.T, c diffCase, oldRounds, newRounds []diffRound, oldRecs, newRecs []*diffRecord, hideBugs bool) {
	t.Helper()
	if c.check != nil {
		c.check(t, oldRounds)
	}
	bugs := knownBugsOf(c.name)
	for _, rounds := range [][]diffRound{oldRounds, newRounds} {
		for i := range rounds {
			if c.stallOK && rounds[i].Stall {
				rounds[i].Stall, rounds[i].Closed = false, true
			}
		}
	}
	for _, rounds := range [][]diffRound{oldRounds, newRounds} {
		for i := range rounds {
			allowedDiff(&rounds[i])
			if c.allow != nil {
				c.allow(&rounds[i])
			}
			for _, b := range bugs {
				if b.norm != nil && hideBugs {
					b.norm(&rounds[i])
				}
			}
		}
	}
	if c.allowRec != nil {
		for _, r := range append(append([]*diffRecord(nil), oldRecs...), newRecs...) {
			c.allowRec(r)
		}
	}
	for _, b := range bugs {
		if b.normRec != nil && hideBugs {
			for _, r := range append(append([]*diffRecord(nil), oldRecs...), newRecs...) {
				b.normRec(r)
			}
		}
		if hideBugs {
			t.Logf("known BUG hidden (TestH1ServerBugs -h1s.bugs shows it): %s", b.desc)
		}
	}
	if dir := os.Getenv("H1S_DIFF_DUMP"); dir != "" {
		// For study: both sides of every case, to diff with a tool.
		name := strings.ReplaceAll(t.Name(), "/", "_")
		os.WriteFile(filepath.Join(dir, name+".old"), []byte(jsonOf(oldRecs)+"\n"+jsonOf(oldRounds)+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, name+".new"), []byte(jsonOf(newRecs)+"\n"+jsonOf(newRounds)+"\n"), 0o644)
	}
	if o, n := jsonOf(oldRecs), jsonOf(newRecs); o != n {
		t.Errorf("the handler saw different requests (old: net/http):\n%s", lineDiff(o, n))
	}
	if o, n := jsonOf(oldRounds), jsonOf(newRounds); o != n {
		t.Errorf("the client got different responses (old: net/http):\n%s", lineDiff(o, n))
	}
	for _, rd := range oldRounds {
		if rd.Stall {
			t.Errorf("net/http stalled: the case must not rely on a timeout")
		}
	}
	if testing.Verbose() && !t.Failed() {
		t.Logf("rounds: %d, responses: %d, requests seen: %d", len(oldRounds), countResps(oldRounds), len(oldRecs))
	}
}

func countResps(rs []diffRound) int {
	n := 0
	for _, r := range rs {
		n += len(r.Resps)
	}
	return n
}

// timeout is how long a read of c may wait for the server.
func (c diffCase) timeout() time.Duration {
	if c.stallOK {
		return time.Second
	}
	return diffTimeout
}

// rawBytes joins a case's parts.
func (c diffCase) raw() string {
	var b bytes.Buffer
	for _, p := range c.parts {
		b.WriteString(p)
	}
	return b.String()
}
