// Package upstream holds the backend pools that l4 and l7 share: which
// backend a new connection or request goes to (the balancer), which
// backends are skipped for a while because a dial to them just failed
// (passive health) or are out of rotation because they fail their active
// health checks, and the per-service circuit breaker (sony/gobreaker).
//
// A Pool is safe for concurrent use and never blocks a caller on another
// caller's dial: picking a backend is a few atomic operations (a short mutex
// for the weighted balancer), and dialing happens outside any lock.
package upstream
