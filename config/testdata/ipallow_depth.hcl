# ip_allow with depth reads X-Forwarded-For from trusted_proxies only:
# warned where an entrypoint has none.
entrypoint "edge" {
  address         = ":8080"
  trusted_proxies = ["10.0.0.0/8"]
}
entrypoint "direct" {
  address     = ":8081"
  middlewares = ["office"]
}
http_route "app" {
  entrypoints = ["edge", "direct"]
  middlewares = ["office", "lan"]
  service     = "app"
}
middleware "office" {
  ip_allow {
    cidrs = ["192.0.2.0/24"]
    depth = 1
  }
}
middleware "lan" {
  ip_allow { cidrs = ["192.0.2.0/24"] }
}
service "app" {
  backend "http://127.0.0.1:9000" {}
}
