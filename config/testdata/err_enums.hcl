log {
  level  = "verbose"
  format = "jsn"
}
entrypoint "web" {
  address = ":8080"
  network = "tpc"
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  proxy_protocol = "v3"
  backend "127.0.0.1:9000" {}
}
