//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Scenario 8: the memory an idle HTTP/1.1 keep-alive connection costs a
// target. Each of -idle-conns connections sends one GET, reads the answer
// and then stays open and silent; the figure is the growth of the target's
// resident set (every process of it) from before the first connection to
// when all are open and idle, divided by their number. The scenario runs
// once per target, on the process started for it and never loaded before.

// idleOpeners is how many connections are being opened at once: enough to
// take a few seconds for 10,000 on a loaded 2-core machine, few enough
// not to look like a flood to any target.
const idleOpeners = 32

// idleSettle is how long the connections stay idle before the resident
// set is read: long enough for lazily freed request state to be freed.
const idleSettle = 2 * time.Second

// idleOpenTimeout bounds opening all the connections.
const idleOpenTimeout = 90 * time.Second

func loadIdle(_ backend, addr string, _ time.Duration, o options, m *meter) (sample, error) {
	n := o.idleConns
	if err := raiseNoFile(uint64(n) + 1024); err != nil {
		return sample{}, err
	}
	if m.pid == 0 {
		return sample{}, errors.New("idle connections: no target process to measure")
	}
	before := currentRSS(m.pid)
	conns, err := openIdle(addr, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return sample{}, err
	}
	time.Sleep(idleSettle)
	// Every connection must still be open: a target that dropped some
	// would look cheaper than it is.
	if dropped := countClosed(conns); dropped > 0 {
		return sample{}, fmt.Errorf("idle connections: the target closed %d of %d", dropped, n)
	}
	after := currentRSS(m.pid)
	// Work is bytes per connection; the table shows it in KiB (scale).
	return sample{Work: float64(after-before) / float64(n), Seconds: 1}, nil
}

// openIdle opens n keep-alive connections to addr, each after one
// complete request and response.
func openIdle(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(idleOpenTimeout)
	var wg sync.WaitGroup
	for range idleOpeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || time.Now().After(deadline) {
					return
				}
				c, err := openOne(addr, deadline)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("idle connection %d of %d: %w", i+1, n, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	var open []net.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	if firstErr == nil && len(open) < n {
		firstErr = fmt.Errorf("idle connections: %d of %d opened within %v", len(open), n, idleOpenTimeout)
	}
	return open, firstErr
}

var idleRequest = []byte("GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n")

func openOne(addr string, deadline time.Time) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(deadline)
	if _, err := c.Write(idleRequest); err != nil {
		c.Close()
		return nil, err
	}
	// The reader is dropped after the answer: the client keeps nothing but
	// the socket. The backend's answer has a Content-Length, so nothing
	// is left unread.
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || resp.Close || br.Buffered() > 0) {
			err = fmt.Errorf("answer %s, close %v", resp.Status, resp.Close)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// countClosed counts connections the peer closed: a read that does not
// time out at once means EOF or an error.
func countClosed(conns []net.Conn) int {
	var buf [1]byte
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(buf[:]); !isNetTimeout(err) {
			closed++
		}
		c.SetReadDeadline(time.Time{})
	}
	return closed
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// raiseNoFile lifts this process's open-file limit to at least want (up to
// the hard limit); the targets started later inherit it.
func raiseNoFile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		return fmt.Errorf("open-file limit: hard limit %d below the %d this scenario needs (ulimit -Hn, or fewer -idle-conns)", lim.Max, want)
	}
	lim.Cur = want
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// currentRSS sums VmRSS over the process tree, in bytes.
func currentRSS(root int) int64 {
	var total int64
	for _, pid := range procTree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb * 1024
			}
		}
	}
	return total
}
