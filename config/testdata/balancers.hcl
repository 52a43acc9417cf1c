entrypoint "a" { address = ":7001" }
entrypoint "b" { address = ":7002" }
entrypoint "c" { address = ":7003" }
entrypoint "d" { address = ":7004" }
entrypoint "e" { address = ":7005" }

tcp_route "a" {
  entrypoints = ["a"]
  service     = "rr"
}
tcp_route "b" {
  entrypoints = ["b"]
  service     = "weighted"
}
tcp_route "c" {
  entrypoints = ["c"]
  service     = "least"
}
tcp_route "d" {
  entrypoints = ["d"]
  service     = "random"
}
tcp_route "e" {
  entrypoints = ["e"]
  service     = "default"
}

service "rr" {
  balancer = "round_robin"
  backend "127.0.0.1:9001" {}
}
service "weighted" {
  balancer = "weighted"
  backend "127.0.0.1:9001" { weight = 3 }
  backend "127.0.0.1:9002" { weight = 1 }
}
service "least" {
  balancer = "least_conn"
  backend "127.0.0.1:9001" {}
  backend "127.0.0.1:9002" {}
}
service "random" {
  balancer = "random"
  backend "127.0.0.1:9001" {}
}
service "default" {
  backend "127.0.0.1:9001" {}
}
