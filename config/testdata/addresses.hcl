# Same port on tcp and udp is fine; port 0 never conflicts.
entrypoint "a" { address = ":8080" }
entrypoint "b" {
  address = ":8080"
  network = "udp"
}
entrypoint "c" { address = "127.0.0.1:0" }
entrypoint "d" { address = "127.0.0.1:0" }
entrypoint "e" { address = "localhost:80" }
entrypoint "f" { address = "[::1]:53" }

tcp_route "a" {
  entrypoints = ["a", "c", "d", "e", "f"]
  service     = "s"
}
udp_route "b" {
  entrypoints = ["b"]
  service     = "s"
}
service "s" {
  backend "db.example.com:5432" {}
}
