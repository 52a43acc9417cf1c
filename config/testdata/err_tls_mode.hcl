entrypoint "a" { address = ":8080" }
entrypoint "b" { address = ":8081" }
entrypoint "c" { address = ":8082" }
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
service "app" {
  backend "127.0.0.1:9000" {}
}
