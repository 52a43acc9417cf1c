package l7

// Growing a request goroutine's stack once, early.
//
// A request runs deep: server, observer, entry, middlewares, proxy,
// balancer, transport. A goroutine starts with a small stack that the
// runtime doubles, copying it, each time a call would overflow it; on that
// path it doubled three or four times, each copy of an ever deeper stack
// (5-6 µs per goroutine: 8 % of the CPU of a connection per request over
// HTTP/1.1 and of every HTTP/2 request, whose handler runs on a goroutine
// of its own). growStack, called where the stack is still shallow, makes
// the runtime grow it to the size the request will need in one step,
// copying only a few frames. A goroutine that then waits long has its
// stack shrunk by the garbage collector as usual.

// requestStack is the stack a proxied request reaches, with room to spare
// (measured: no stack growth left on the proxy path with it).
const requestStack = 12 << 10

// growStack grows the calling goroutine's stack to hold requestStack more
// bytes.
//
// The growth is the prologue's: it checks the stack against the whole
// frame, the array's slot included, whether or not the array is used.
// The array is declared where it never is, so nothing zeroes it (12 KiB
// of memclr per request, half the cost of the growth itself). stackNever
// is a variable so the compiler cannot drop the branch, and with it the
// slot.
//
//go:noinline
func growStack() {
	if stackNever {
		var frame [requestStack]byte
		stackTouch(frame[:])
	}
}

// stackNever is never set (see growStack).
var stackNever bool

// stackTouch keeps frame alive (and on the stack: it does not escape).
//
//go:noinline
func stackTouch(b []byte) {
	if len(b) > 0 && b[0] != 0 {
		panic("unreachable")
	}
}
