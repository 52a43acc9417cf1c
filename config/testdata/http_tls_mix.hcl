# TLS tcp_routes and http_routes on one entrypoint: TLS connections that no
# tcp_route takes are terminated and served as HTTP, as are plaintext ones.
entrypoint "websecure" {
  address = ":8443"
}

tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}

tcp_route "db" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  service     = "pg"
}

tcp_route "offload" {
  entrypoints = ["websecure"]
  alpn        = ["imap"]
  tls         = "terminate"
  service     = "imap"
}

http_route "web" {
  entrypoints = ["websecure"]
  hosts       = ["www.example.com"]
  service     = "web"
}

service "pg" {
  backend "127.0.0.1:5432" {}
}

service "imap" {
  backend "tls://mail.internal:993" {}
}

service "web" {
  backend "https://web.internal:443" {}
}
