// Package upstream holds the backend pools that l4 and l7 share: which
// backend a new connection goes to (the balancer), and which backends are
// skipped for a while because a dial to them just failed (passive health).
//
// A Pool is safe for concurrent use and never blocks a caller on another
// caller's dial: picking a backend is a few atomic operations (a short mutex
// for the weighted balancer), and dialing happens outside any lock.
package upstream
