// Package middleware holds proxynow's HTTP middlewares: each kind of
// `middleware "name" { KIND { ... } }` block is a constructor that turns its
// configuration, once at load time, into a func(http.Handler) http.Handler.
// Nothing is parsed per request. A route's chain is folded once: the
// entrypoint's middlewares first, then the route's, in the order listed.
package middleware
