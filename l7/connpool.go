package l7

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connWorkers runs the HTTP/1 server's connections on goroutines that
// outlive them: a connection that ends leaves its goroutine waiting for
// the next one, stack already grown, instead of exiting.
//
// Why: a connection's goroutine starts with the runtime's smallest stack
// and grows it to the proxy path's depth (growStack) by allocating a new
// one and copying; at its exit the grown stack is freed. With a new
// connection per request that was about 10 % of the proxy's CPU in perf
// (morestack, copystack, newproc, goexit0), and every connection resumed
// from parking (a keep-alive client quiet for ParkIdleAfter) paid it again.
//
// At most maxIdleWorkers wait, the most recently used first (its stack is
// the most likely to be still grown and cached); one that waits
// workerIdleTimeout exits. The garbage collector shrinks a waiting
// worker's stack as it does any goroutine's, so memory held by a burst's
// workers goes back over a few cycles even before that.
type connWorkers struct {
	mu     sync.Mutex
	idle   []*connWorker // oldest first
	closed bool
	timer  *time.Timer // expires idle workers; nil until first needed

	started atomic.Int64 // workers started (tests)
}

type connWorker struct {
	jobs  chan connJob // capacity 1: a hand-off never blocks
	since time.Time    // idle since
}

// connJob is a connection to serve, or an HTTP/2 stream to run the
// handler of (h2): a stream's handler runs as deep as a connection's and
// gains the same from a worker's grown stack.
type connJob struct {
	nc  net.Conn
	tls *tls.ConnectionState
	h2  *h2Stream
}

const maxIdleWorkers = 128

var workerIdleTimeout = 10 * time.Second // a var for the tests

// serve serves nc on an idle worker, or on a new one.
func (p *connWorkers) serve(s *h1Server, nc net.Conn, st *tls.ConnectionState) {
	p.run(s, connJob{nc: nc, tls: st})
}

// run runs job on an idle worker, or on a new one.
func (p *connWorkers) run(s *h1Server, job connJob) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- job
		return
	}
	p.mu.Unlock()
	p.started.Add(1)
	go p.work(s, job)
}

func (p *connWorkers) work(s *h1Server, job connJob) {
	var w *connWorker
	for {
		if job.h2 != nil {
			job.h2.c.runHandler(job.h2)
		} else {
			s.serveConn(job.nc, job.tls)
		}
		job = connJob{}
		if w == nil {
			w = &connWorker{jobs: make(chan connJob, 1)}
		}
		if !p.wait(w) {
			return
		}
		var ok bool
		if job, ok = <-w.jobs; !ok {
			return
		}
	}
}

// wait puts w on the idle list; false when it should exit instead.
func (p *connWorkers) wait(w *connWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleWorkers {
		return false
	}
	w.since = time.Now()
	p.idle = append(p.idle, w)
	if p.timer == nil {
		p.timer = time.AfterFunc(workerIdleTimeout, p.expire)
	} else if len(p.idle) == 1 {
		p.timer.Reset(workerIdleTimeout)
	}
	return true
}

// expire ends the workers idle for workerIdleTimeout and re-arms for the
// oldest of the rest.
func (p *connWorkers) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].since) >= workerIdleTimeout {
		close(p.idle[n].jobs)
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle) : len(p.idle)+n])
	if len(p.idle) > 0 && !p.closed {
		p.timer.Reset(workerIdleTimeout - now.Sub(p.idle[0].since))
	}
}

// close ends the idle workers; busy ones end with their connection.
func (p *connWorkers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.jobs)
	}
	clear(p.idle)
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
	}
}
