// Package server assembles proxynow's layers from a config.Config: one
// upstream.Pool per service, one l4 server per entrypoint with the handler of
// the route that serves it. Start binds every listener (and fails naming the
// entrypoint and address when one cannot be bound); Shutdown drains them
// within a grace period.
package server
