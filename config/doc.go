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
//     and the parts of the design that later releases implement (tls,
//     admin, http_route, middleware, quic_route, http3, SNI routing, health
//     checks, ...) are refused with a "not supported yet" error.
//   - Every default is applied: a Config's fields hold the values the
//     runtime uses, never a zero meaning "default". Defaults are documented
//     on the types and exported as Default* constants.
//   - Names of entrypoints, routes and services are global across all
//     files of one load; every reference in a returned Config resolves.
//   - The only I/O is reading the configuration files, the files named by
//     file() and the environment read by env(). Runtime packages read the
//     plain types in this package and never import the HCL library.
//   - A returned Config is never modified by this package again; callers
//     must treat it, including its slices, as read-only.
//
// The pipeline is parse (hclsyntax) -> decode against an explicit schema
// -> apply defaults -> pure validation -> build.
package config
