entrypoint {
  address = ":8080"
}
service "a" "b" {
  backend "127.0.0.1:9000" {}
}
global "main" {}
tcp_route "" {
  entrypoints = ["web"]
  service     = "a"
}
service "c" {
  backend {}
}
entrypoint "x" {
  address = ":1"
  timeouts "t" {}
}
