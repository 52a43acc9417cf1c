entrypoint "web" {
  address = file("files/does-not-exist.txt")
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  balancer = nofunc("x")
  backend "127.0.0.1:9000" {}
}
entrypoint "nl" {
  # file() keeps the trailing newline, which no address has.
  address = file("files/with-newline.txt")
}
