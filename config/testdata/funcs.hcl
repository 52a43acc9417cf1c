# env() and file() (relative to this file's directory, kept verbatim).
entrypoint "web" {
  address         = env("PROXYNOW_TEST_ADDR")
  max_connections = env("PROXYNOW_TEST_MAXCONN")
}
entrypoint "alt" {
  address = file("files/addr.txt")
}
tcp_route "web" {
  entrypoints = ["web", "alt"]
  service     = "app"
}
service "app" {
  balancer = "${file("files/balancer.txt")}ed"
  backend "127.0.0.1:9000" {}
}
