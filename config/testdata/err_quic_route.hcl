tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}
entrypoint "h3" {
  address = ":8443"
  http3   = true
}
entrypoint "plain" {
  address = ":9443"
}
entrypoint "dns" {
  address = ":5353"
  network = "udp"
}
quic_route "a" {
  entrypoints = ["h3"]
  sni         = ["p.test", "*.wild.test"]
  service     = "quic"
}
quic_route "dup" {
  entrypoints = ["h3", "plain", "dns"]
  sni         = ["P.test.", "other.test"]
  service     = "quic"
}
quic_route "nosni" {
  entrypoints = ["h3"]
  service     = "quic"
}
quic_route "empty" {
  entrypoints = ["h3"]
  sni         = []
  service     = "web"
}
quic_route "tls" {
  entrypoints = ["h3"]
  sni         = ["tls.test"]
  service     = "tlsbe"
  alpn        = ["h3"]
}
http_route "r" {
  entrypoints = ["h3"]
  service     = "web"
}
service "quic" {
  backend "127.0.0.1:4433" {}
}
service "tlsbe" {
  backend "tls://127.0.0.1:4434" {}
  proxy_protocol = "v2"
}
service "web" {
  backend "http://127.0.0.1:9000" {}
}
