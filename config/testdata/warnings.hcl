entrypoint "used" { address = ":9000" }
entrypoint "spare" { address = ":9001" }
tcp_route "r" {
  entrypoints = ["used"]
  service     = "used"
}
service "used" {
  backend "127.0.0.1:1" {}
}
service "spare" {
  backend "127.0.0.1:2" {}
}
