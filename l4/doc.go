// Package l4 is proxynow's transport layer: TCP and UDP listeners, the
// PROXY protocol in and out, and moving bytes between a client and a backend.
//
// Its contract is small, in the manner of caddy-l4: a TCPServer accepts
// connections, reads a PROXY header from trusted peers, and hands each
// connection to a Handler as a *Conn; Proxy is the Handler that pipes a
// connection to a backend of an upstream.Pool. A UDPServer keeps a flow
// table keyed by client address and relays datagrams through one connected
// socket per flow. On Linux each read takes every queued datagram (up to a
// batch) with recvmmsg, each write hands a flow's share of a batch to
// sendmmsg, and a run of equal-sized datagrams to one peer goes as one UDP
// GSO message; elsewhere the same code moves one datagram per call.
//
// Bytes between two TCP sockets move with (*net.TCPConn).ReadFrom on the raw
// sockets, so Linux splices them in the kernel; bytes that were read early
// (a PROXY header's trailing bytes, a peeked TLS ClientHello) are written
// first and the wrappers are then out of the way.
//
// l4 imports no layer above it.
package l4
