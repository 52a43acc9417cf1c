servce "app" {
  backend "127.0.0.1:9000" {}
}
entrypoint "web" {
  address = ":8080"
  timeout {
    idle = "1m"
  }
}
frobnicate {}
