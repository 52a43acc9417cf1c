entrypoint "web" { address = ":8080" }
entrypoint "dns" {
  address = ":5353"
  network = "udp"
}
