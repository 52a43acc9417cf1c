// Package config turns proxynow's HCL configuration files into one
// validated, immutable Config value.
//
// What it promises:
//
//   - Load, Parse and ParseFiles either return a Config that passed every
//     check, or nil and a Diagnostics error listing every error found (not
//     only the first), sorted by file, line and column. Each diagnostic
//     names the file, line and column of the offending attribute value or
//     block label and says what to write instead, with a "did you mean"
//     suggestion where a name is close to a known one.
//   - Nothing is silently ignored: unknown blocks and attributes are errors,
//     and the parts of the design that later releases implement (acme,
//     admin, quic_route, http3, h3:// backends, ...) are refused with a
//     "not supported yet" error.
//   - Every default is applied: a Config's fields hold the values the
//     runtime uses, never a zero meaning "default". Defaults are documented
//     on the types and exported as Default* constants. Settings that do
//     not apply stay zero: HTTPSettings on a UDP entrypoint, HTTPService
//     on an L4 service, and every backend setting (Balancer,
//     ConnectTimeout, FailTimeout, TLS, HTTP) on a respond service.
//   - Every service is of one layer. An L4 service has host:port and
//     tls:// backends and serves tcp_routes and udp_routes; an HTTP
//     service has http://, https://, h2c:// and h3:// backends, or a respond
//     block and no backend, and serves http_routes. The HTTP-only
//     settings (p2c and hash balancers, hash_key, sticky, health_check,
//     circuit_breaker, retry, ...) are refused on an L4 service.
//   - Names of entrypoints, routes and services are global across all
//     files of one load; every reference in a returned Config resolves.
//   - The only I/O is reading the configuration files, the files named by
//     file(), the environment read by env(), the users files of basic_auth,
//     and the certificate, key and CA files that the tls blocks name: Load proves that they load (and
//     warns about an expired certificate), then keeps only their paths,
//     for the runtime loads and reloads them itself. A relative path in a
//     config file is relative to that file's directory. Runtime packages
//     read the plain types in this package and never import the HCL
//     library.
//   - A middleware block holds exactly one kind: Middleware.Kind names it
//     and exactly the matching pointer is set, with every default applied.
//     Every name in an http_route's or a TCP entrypoint's middlewares
//     names a middleware, once per list; a middleware nothing uses is a
//     warning. Regexes compile, header names are canonical, and a
//     basic_auth users_file is read at load (like a certificate): its
//     lines are checked and merged into BasicAuth.Users, so the runtime
//     never reads it. Only bcrypt and SHA-256 crypt hashes are accepted.
//   - TCP routes on one entrypoint never overlap: TCPRoute documents how
//     SNI and ALPN pick a route, and Load refuses two routes that those
//     rules could not tell apart. An entrypoint with http_routes has no
//     tcp_route with tls = "none" (HTTP takes its connections that are
//     not TLS), and no two http_routes on it have the same matchers and
//     priority.
//   - A returned Config is never modified by this package again; callers
//     must treat it, including its slices, as read-only.
//
// The pipeline is parse (hclsyntax) -> decode against an explicit schema
// -> apply defaults -> pure validation -> check the named files -> build.
package config
