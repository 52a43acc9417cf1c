package middleware

import "github.com/proxynow/proxynow/config"

func newCompress(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newRedirectScheme(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newRedirectRegex(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newStripPrefix(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newAddPrefix(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newReplacePath(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newReplacePathRegex(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}

func newErrorPages(m *config.Middleware, _ Env) (Middleware, error) {
	return nil, errNotImplemented(m.Kind)
}
