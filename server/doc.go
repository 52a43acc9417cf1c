// Package server assembles proxynow's layers from a config.Config: one
// upstream.Pool per service, one l4 server per entrypoint with the handler of
// the route that serves it. Start binds every listener (and fails naming the
// entrypoint and address when one cannot be bound); Shutdown drains them
// within a grace period.
//
// A configuration compiles into a generation (generation.go). Reload
// compiles the next one on top of the running one, taking over every pool,
// proxy, middleware, certificate store and route handler whose definition
// is unchanged, and every socket whose network and address are unchanged
// (listener.go); it then publishes the generation with one atomic store per
// listener, and retires what the new one no longer uses: removed
// entrypoints, routes and services are drained for the grace period, then
// closed (reload.go). A changed log.access swaps the access log the layers
// share the same way: opened before, swapped with the generation, the old
// one drained and closed after (accesslog_swap.go). Reloader (reloader.go)
// loads the files for SIGHUP, POST /reload and the file watch (watch.go),
// serialises reloads, logs them and counts them.
package server
