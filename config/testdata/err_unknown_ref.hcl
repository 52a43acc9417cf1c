entrypoint "web" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["web", "wbe", "nothing-like-it"]
  service     = "ap1"
}
tcp_route "s" {
  entrypoints = ["web2"]
  service     = "zzzzzz"
}
service "api" {
  backend "127.0.0.1:9000" {}
}
