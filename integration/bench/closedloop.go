package main

import (
	"fmt"
	"sync"
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
