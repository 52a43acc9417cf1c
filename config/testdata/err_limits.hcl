entrypoint "tcp" {
  address   = ":8080"
  max_flows = 10
}
entrypoint "udp" {
  address         = ":53"
  network         = "udp"
  max_connections = 10
}
entrypoint "zero" {
  address         = ":8081"
  max_connections = 0
}
entrypoint "neg" {
  address   = ":54"
  network   = "udp"
  max_flows = -3
}
tcp_route "t" {
  entrypoints = ["tcp", "zero"]
  service     = "app"
}
udp_route "u" {
  entrypoints = ["udp"]
  service     = "app"
}
udp_route "v" {
  entrypoints = ["neg"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
