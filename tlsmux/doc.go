// Package tlsmux routes TCP connections by what their TLS ClientHello says,
// without consuming it: Mux is an l4.Handler that peeks the first bytes,
// parses the ClientHello (SNI, ALPN, versions), and either passes the bytes
// through untouched to a route's handler (passthrough: the peeked bytes are
// replayed first, then the raw sockets are spliced) or completes the
// handshake itself with a certificate from the CertStore and hands the
// route's handler the decrypted stream (terminate).
//
// A connection whose first bytes are not TLS goes to the entrypoint's plain
// route, if any. A ClientHello that no route claims gets an
// unrecognized_name alert. Every peek and handshake is bounded by the
// handshake timeout; malformed input closes that connection only.
package tlsmux
