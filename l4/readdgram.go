package l4

import (
	"sync"
	"syscall"
)

// replyBufs hold one datagram only while it is handed on, so idle flows
// cost no buffer.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// ReadDatagrams reads datagrams from the connected socket behind rc and
// calls fn with each, in a pooled buffer that is reused once fn returns,
// until a read fails (a read deadline included); it returns that error.
// It allocates nothing per datagram: the closure handed to rc.Read is made
// once per call.
func ReadDatagrams(rc syscall.RawConn, fn func(b []byte)) error {
	var rerr error
	relay := func(fd uintptr) bool {
		bp := replyBufs.Get().(*[]byte)
		defer replyBufs.Put(bp)
		n, err := readNonblock(fd, *bp)
		if err == syscall.EAGAIN {
			return false
		}
		if rerr = err; err == nil {
			fn((*bp)[:n])
		}
		return true
	}
	for {
		rerr = nil
		err := rc.Read(relay)
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
}
