//go:build linux

package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const wrkOut = `Running 3s test @ http://127.0.0.1:40001/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  456.00us  12.34ms   89.00%
    Req/Sec    40.12k     2.00k   45.00k    80.00%
  Latency Distribution
     50%  850.00us
     75%    1.40ms
     90%    1.80ms
     99%    3.20ms
  120000 requests in 3.00s, 12.34MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  40000.00
Transfer/sec:      4.11MB
`

const h2loadOut = `starting benchmark...
spawning thread #0: 10 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for measurements.
Warm-up started for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 26000.00 req/s, 1.02MB/s
requests: 78000 total, 78100 started, 78000 done, 77990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 77990 2xx, 0 3xx, 0 4xx, 10 5xx
traffic: 3.07MB (3219360) total, 1.01MB (1060672) headers (space savings 93.21%), 1.01MB (1058746) data
                     min         max         mean         sd        +/- sd
time for request:      199us     17.43ms      3.81ms      1.84ms    69.73%
`

func TestParseWrk(t *testing.T) {
	s, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	if s.Work != 119995 || s.Errors != 8 || math.Abs(s.Seconds-3) > 1e-9 || s.P50ms != 0.85 || s.P99ms != 3.2 {
		t.Fatalf("got %+v", s)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("no error for wrk's failure output")
	}
}

func TestParseH2load(t *testing.T) {
	s, err := parseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	if s.Work != 77990 || s.Errors != 20 || s.Seconds != 3 {
		t.Fatalf("got %+v", s)
	}
	log := filepath.Join(t.TempDir(), "h2load.log")
	rows := strings.Repeat("1700000000000000\t200\t1000\n", 99) + strings.Repeat("1700000000000100\t200\t2000\n", 2) +
		strings.Repeat("1700000000000200\t503\t90000\n", 10)
	if err := os.WriteFile(log, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h2loadLatency(log, &s); err != nil {
		t.Fatal(err)
	}
	if s.P50ms < 0.98 || s.P50ms > 1.0 || s.P99ms < 1.96 || s.P99ms > 2.0 {
		t.Fatalf("p50 %v p99 %v, want ~1 and ~2 ms (the 503 left out)", s.P50ms, s.P99ms)
	}
}

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		head                 string
		body                 int
		close, isHead, valid bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n", 0, false, false, true},
		{"GET / HTTP/1.1\r\nConnection: Close\r\n", 0, true, false, true},
		{"GET / HTTP/1.0\r\n", 0, true, false, true},
		{"HEAD / HTTP/1.1\r\n", 0, false, true, true},
		{"POST / HTTP/1.1\r\ncontent-length: 7\r\n", 7, false, false, true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 0, true, false, false},
		{"GARBAGE\r\n", 0, true, false, false},
	} {
		body, cl, hd, ok := parseHead([]byte(tc.head))
		if body != tc.body || cl != tc.close || hd != tc.isHead || ok != tc.valid {
			t.Errorf("%q: got %d %v %v %v", tc.head, body, cl, hd, ok)
		}
	}
}
