entrypoint "a" { address = "8080" }
entrypoint "b" { address = ":65536" }
entrypoint "c" { address = "bad host:80" }
entrypoint "d" { address = "::1:53" }
entrypoint "e" { address = "" }
entrypoint "f" { address = "127.0.0.1:http" }
entrypoint "g" { address = "10.0.0.256:80" }
entrypoint "h" { address = "tcp://127.0.0.1:80" }
entrypoint "i" { address = "127.0.0.1:" }
tcp_route "r" {
  entrypoints = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
