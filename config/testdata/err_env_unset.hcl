entrypoint "web" {
  address = env("PROXYNOW_TEST_SURELY_UNSET")
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = env("")
}
service "app" {
  backend "127.0.0.1:9000" {}
}
