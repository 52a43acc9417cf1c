# TLS routing: defaults, name normalisation, wildcards, catch-alls.
entrypoint "web" { address = ":8080" }
entrypoint "websecure" { address = ":8443" }

tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "./certs/site.key"
  }
}

# sni alone: tls defaults to passthrough; names are lower-cased, the
# trailing dot dropped; "*.com" and '_' are allowed
tcp_route "db" {
  entrypoints = ["websecure"]
  sni         = ["DB.Example.COM.", "*.db.example.com", "*.com", "_srv.example.com", "xn--bcher-kva.example"]
  service     = "pg"
}

# the same name with alpn is more specific; alpn alone also means passthrough
tcp_route "db_h2" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  alpn        = ["h2", "x-custom"]
  service     = "pg"
}

# a different alpn on the same name does not overlap
tcp_route "db_pg" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  alpn        = ["postgresql"]
  tls         = "terminate"
  service     = "pg_tls"
}

# an exact name under a wildcard of another route: exact wins
tcp_route "one" {
  entrypoints = ["websecure"]
  sni         = ["one.db.example.com"]
  service     = "pg"
}

# TLS catch-all by alpn, TLS catch-all, and the catch-all for plain bytes
tcp_route "any_h2" {
  entrypoints = ["websecure"]
  alpn        = ["h2"]
  service     = "pg"
}
tcp_route "any_tls" {
  entrypoints = ["websecure"]
  tls         = "terminate"
  service     = "plain"
}
tcp_route "plain" {
  entrypoints = ["websecure", "web"]
  service     = "plain"
}

service "pg" {
  backend "127.0.0.1:5432" {}
}

# tls:// re-encrypts what a terminate route decrypted (a passthrough route
# refuses it: the client's TLS would go inside a second one)
service "pg_tls" {
  backend "tls://DB1.internal.:5432" {}
  backend "tls://[2001:db8::1]:5432" {}
  backend "127.0.0.1:5432" {}
}

service "plain" {
  backend "127.0.0.1:9000" {}
}
