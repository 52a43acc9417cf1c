entrypoint "a" { address = ":8080" }
entrypoint "b" { address = ":8081" }
entrypoint "c" { address = ":8082" }
entrypoint "d" { address = ":8083" }
entrypoint "e" { address = ":8084" }
tcp_route "p" {
  entrypoints = ["a"]
  service     = "app"
  tls         = "passthrough"
}
tcp_route "t" {
  entrypoints = ["b"]
  service     = "app"
  tls         = "terminate"
}
tcp_route "x" {
  entrypoints = ["c"]
  service     = "app"
  tls         = "pasthrough"
}
tcp_route "none_sni" {
  entrypoints = ["d"]
  sni         = ["db.example.com"]
  tls         = "none"
  service     = "app"
}
tcp_route "none_both" {
  entrypoints = ["e"]
  sni         = ["db.example.com"]
  alpn        = ["h2"]
  tls         = "none"
  service     = "app"
}
tcp_route "none_alpn" {
  entrypoints = ["e"]
  alpn        = ["h2"]
  tls         = "none"
  service     = "app"
}
tcp_route "bad_type" {
  entrypoints = ["a"]
  tls         = true
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
