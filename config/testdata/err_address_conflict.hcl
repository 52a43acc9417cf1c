entrypoint "a" { address = ":8080" }
entrypoint "b" { address = "0.0.0.0:8080" }
entrypoint "c" { address = "[::]:8080" }
entrypoint "d" { address = "127.0.0.1:9000" }
entrypoint "e" { address = "127.0.0.1:9000" }
entrypoint "f" {
  address = "127.0.0.1:9000"
  network = "udp"
}
entrypoint "g" { address = "127.0.0.1:0" }
entrypoint "h" { address = "127.0.0.1:0" }
tcp_route "r" {
  entrypoints = ["a", "b", "c", "d", "e", "g", "h"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:1" {}
}
