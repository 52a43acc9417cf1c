package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The read deadline of a request's head is not cleared once the head is
// read (h1conn.rdStale): these requests outlive it and must not see it.

const staleHeaderTimeout = 150 * time.Millisecond

// A request body that arrives after the header timeout, on the first
// request (which waited on its header deadline) and on a keep-alive one,
// with no idle timeout to put a deadline of its own on the body.
func TestH1ServerSlowBodyAfterHeadDeadline(t *testing.T) {
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "got "+string(b))
	}), ServerOptions{ReadHeaderTimeout: staleHeaderTimeout})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3 {
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
		time.Sleep(3 * staleHeaderTimeout)
		io.WriteString(c, "cde")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "got abcde" {
			t.Fatalf("request %d: %s %q", i, resp.Status, b)
		}
	}
}

// The client going away is still seen after the header timeout has
// passed: the watcher clears the head's deadline before it reads.
func TestH1ServerClientGoneAfterHeadDeadline(t *testing.T) {
	canceled := make(chan error, 1)
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			return
		}
		select {
		case <-r.Context().Done():
			canceled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			canceled <- nil
		}
	}), ServerOptions{ReadHeaderTimeout: staleHeaderTimeout, IdleTimeout: time.Minute})
	c, _ := dialAfterOneGET(t, addr)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(3 * staleHeaderTimeout)
	c.Close()
	select {
	case err := <-canceled:
		if err == nil {
			t.Fatal("context not canceled when the client went away after the header timeout")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("handler did not return")
	}
}

// A keep-alive request whose head does not arrive whole still gets the
// header timeout: the connection is closed, with no answer to the head.
func TestH1ServerSplitHeadTimesOut(t *testing.T) {
	_, addr := startH1Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ServerOptions{ReadHeaderTimeout: staleHeaderTimeout, IdleTimeout: time.Minute})
	c, br := dialAfterOneGET(t, addr)
	start := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if len(rest) > 0 && !strings.HasPrefix(string(rest), "HTTP/1.1 408") {
		t.Fatalf("answer to a head cut by its timeout: %q", rest)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("closed after %v: the header timeout did not apply", d)
	}
}

// dialAfterOneGET connects to addr and has one GET answered, so that the
// next request on the connection is a keep-alive one.
func dialAfterOneGET(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, br
}
