entrypoint "web" { address = ":8080" }
entrypoint "dns" {
  address = ":5353"
  network = "udp"
}
http_route "udp" {
  entrypoints = ["dns", "wbe", "web", "web"]
  service     = "ap"
}
http_route "missing" {
  path = "/"
}
http_route "l4" {
  entrypoints = ["web"]
  path        = "/l4"
  service     = "pg"
}
http_route "l4tls" {
  entrypoints = ["web"]
  path        = "/l4tls"
  service     = "secure"
}
tcp_route "to_http" {
  entrypoints = ["web"]
  sni         = ["a.example.com"]
  service     = "app"
}
tcp_route "to_respond" {
  entrypoints = ["web"]
  sni         = ["b.example.com"]
  service     = "hello"
}
udp_route "to_h2c" {
  entrypoints = ["dns"]
  service     = "grpc"
}
service "app" {
  backend "http://127.0.0.1:9000" {}
}
service "grpc" {
  backend "h2c://127.0.0.1:9001" {}
}
service "hello" {
  respond {}
}
service "pg" {
  backend "127.0.0.1:5432" {}
}
service "secure" {
  backend "tls://db.internal:5432" {}
}
