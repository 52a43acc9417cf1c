package middleware

import "github.com/proxynow/proxynow/config"

func newBasicAuth(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newForwardAuth(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newHeaders(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}
