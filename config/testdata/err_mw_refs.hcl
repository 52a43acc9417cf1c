entrypoint "web" {
  address     = ":8080"
  middlewares = ["limitt", "limit", "limit"]
}

entrypoint "dns" {
  address     = ":5353"
  network     = "udp"
  middlewares = ["limit"]
}

entrypoint "alt" {
  address     = ":8081"
  middlewares = "limit"
}

http_route "app" {
  entrypoints = ["web", "alt"]
  middlewares = ["limit", "auth", "limit", "zzzzzz"]
  service     = "app"
}

http_route "other" {
  entrypoints = ["web"]
  path        = "/other"
  middlewares = ["errors"]
  service     = "app"
}

http_route "typed" {
  entrypoints = ["web"]
  path        = "/typed"
  middlewares = ["limit", 42]
  service     = "app"
}

udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

service "dns" {
  backend "127.0.0.1:53" {}
}

middleware "limit" {
  rate_limit {
    average = 1
  }
}

middleware "errors" {
  error_pages {
    statuses = ["500-599"]
    service  = "dns"
    path     = "/"
  }
}

middleware "errors2" {
  error_pages {
    statuses = ["500-599"]
    service  = "ap"
    path     = "/"
  }
}
