global {
  grace_period = 10
}
entrypoint "web" {
  address         = 8080
  max_connections = "x"
  http3           = "maybe"
}
entrypoint "half" {
  address         = ":1"
  max_connections = 1.5
}
tcp_route "r" {
  entrypoints = "web"
  service     = ["app"]
}
tcp_route "s" {
  entrypoints = ["half", 3]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {
    weight = true
  }
}
