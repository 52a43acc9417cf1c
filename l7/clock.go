package l7

import "time"

// The clock of deadlines and durations that need no wall time.
//
// time.Now reads two clocks (about 60 ns here); monoNow reads one (about
// 30 ns). A proxied HTTP/1 request read the clock ten times; where only an
// interval or a deadline is wanted it now reads the monotonic clock once
// and shares it. monoBase makes that clock's readings deadlines: monoTime
// turns one back into a time.Time that carries the monotonic reading, so
// net.Conn's and quic-go's deadline arithmetic (time.Until) uses it too
// and a step of the wall clock moves no deadline.

var monoBase = time.Now()

// monoNow is the time since monoBase, in ns (never 0 after start).
func monoNow() int64 { return int64(time.Since(monoBase)) }

// monoTime is a monoNow reading as a deadline.
func monoTime(t int64) time.Time { return monoBase.Add(time.Duration(t)) }
