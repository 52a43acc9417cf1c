//go:build linux

package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// closedLoop runs workers closed-loop operations for d, each worker calling
// op(worker) back to back, and turns their counts and latencies into a
// sample; what and addr name the operation in the error when none
// completed.
func closedLoop(workers int, d time.Duration, m *meter, what, addr string, op func(worker int) error) (sample, error) {
	type result struct {
		ok, errs int64
		hist     *histogram
		lastErr  error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	m.begin()
	deadline := m.t0.Add(d)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{hist: newHistogram()}
			for j := 0; j < 1<<30 && time.Now().Before(deadline); j++ {
				t := time.Now()
				if err := op(i); err != nil {
					r.errs++
					r.lastErr = err
					continue
				}
				r.ok++
				r.hist.record(time.Since(t))
			}
			results[i] = r
		}()
	}
	wg.Wait()
	m.end()
	s := sample{hist: newHistogram()}
	var lastErr error
	for _, r := range results {
		s.Work += float64(r.ok)
		s.Errors += r.errs
		s.hist.merge(r.hist)
		if r.lastErr != nil {
			lastErr = r.lastErr
		}
	}
	m.fill(&s)
	s.finishLatency()
	if s.Work == 0 {
		return s, fmt.Errorf("no %s completed through %s: %v", what, addr, lastErr)
	}
	return s, nil
}

// openLoop starts n operations at a fixed rate from a pool of workers,
// each calling op(worker); an operation's latency runs from its scheduled
// start, so a stalled target is charged for the queue it causes.
// Operations still queued 10 s after d count as errors.
func openLoop(n, pool int, rate float64, d time.Duration, op func(worker int) error) sample {
	due := make(chan time.Time, n)
	hists := make([]*histogram, pool)
	var ok, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	hardStop := start.Add(d + 10*time.Second)
	for i := range pool {
		hists[i] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				if time.Now().After(hardStop) {
					errs.Add(1)
					continue
				}
				if err := op(i); err != nil {
					errs.Add(1)
					continue
				}
				ok.Add(1)
				hists[i].record(time.Since(at))
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	s := sample{hist: newHistogram(), Rate: rate, Work: float64(ok.Load()), Errors: errs.Load(), Seconds: time.Since(start).Seconds()}
	for _, h := range hists {
		s.hist.merge(h)
	}
	s.finishLatency()
	return s
}
