package middleware

import "github.com/proxynow/proxynow/config"

func newRateLimit(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newInFlight(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newIPAllow(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newIPDeny(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newMaxBody(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}
