// Package accesslog writes access log lines (one per HTTP request, TCP
// connection and UDP flow) without putting the write on the traffic's path.
//
// Lines are encoded by the caller's goroutine into pooled buffers with
// append-style encoders (no fmt, no reflection) and queued on a bounded
// channel; one goroutine writes them through a buffered writer and flushes
// whenever the queue runs empty. When the queue is full (a slow disk, a pipe
// nobody reads) the line is dropped and counted: traffic never waits for the
// log. Close flushes what is queued. Reopen, for log rotation, has the same
// goroutine open the file's path again between two lines.
//
// A Switch holds the Writer in use so that a reload can replace it (another
// path, format or queue) under traffic: lines read it with an atomic load,
// a line that finds its Writer closed by the swap is encoded again for the
// successor, and a Writer that Follows another writes nothing before the old
// one has written its last line.
//
// It is a leaf package: l4, l7, quic and tlsmux call a *Switch (nil, or
// holding no Writer, means off) and import nothing else from each other.
// It lives under upstream, the one package every layer may import (cmd ->
// server -> {quic, l7, tlsmux, l4} -> upstream), so that sharing it adds no
// edge against that order.
package accesslog
