entrypoint "a" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["a"]
  service     = "p2c"
}
tcp_route "s" {
  entrypoints = ["b"]
  service     = "hash"
}
tcp_route "t" {
  entrypoints = ["c"]
  service     = "typo"
}
tcp_route "u" {
  entrypoints = ["d"]
  service     = "nonsense"
}
entrypoint "b" { address = ":8081" }
entrypoint "c" { address = ":8082" }
entrypoint "d" { address = ":8083" }
service "p2c" {
  balancer = "p2c"
  backend "127.0.0.1:9000" {}
}
service "hash" {
  balancer = "hash"
  backend "127.0.0.1:9000" {}
}
service "typo" {
  balancer = "least_con"
  backend "127.0.0.1:9000" {}
}
service "nonsense" {
  balancer = "fastest"
  backend "127.0.0.1:9000" {}
}
