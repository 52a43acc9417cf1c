// Package l7 is proxynow's HTTP layer: one http.Handler per entrypoint that
// resolves the client, routes the request (Router), and hands it to a
// service's handler — a reverse proxy to a balanced backend pool (Proxy) or
// a static answer (Respond). The same handler serves HTTP/1.1, HTTP/2 and
// HTTP/3; Server runs it over a net.Listener of plaintext or terminated TLS
// connections that the server package feeds it.
//
// l7 imports no other layer but upstream: connections arrive as net.Conns
// (a *tls.Conn when TLS was terminated), so ALPN decides HTTP/2.
//
// Safe by default, with net/http/httputil.ReverseProxy's semantics but not
// its per-request cloning: hop-by-hop headers are removed (including those
// a client names in Connection) before proxynow adds its own forwarding
// headers, so a client can never strip them; forwarding headers from
// untrusted peers are replaced, not appended to. Bodyless requests to
// plain-HTTP backends take a fast HTTP/1.1 path (h1Transport); everything
// else goes through net/http's Transport.
package l7
