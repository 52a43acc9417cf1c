entrypoint "web" {
  address = ":8080"
}

http_route "app" {
  entrypoints = ["web"]
  middlewares = ["none", "two", "three", "typo", "far", "attr", "stray", "labelled", "inner"]
  service     = "app"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

middleware "none" {}

middleware "two" {
  rate_limit {
    average = 1
  }
  headers {
    security = true
  }
}

middleware "three" {
  add_prefix {
    prefix = "/a"
  }
  add_prefix {
    prefix = "/b"
  }
  max_body {
    bytes = 1
  }
}

middleware "typo" {
  rate_limt {
    average = 1
  }
}

middleware "far" {
  frobnicate {}
}

middleware "attr" {
  max_body = { bytes = 1 }
}

middleware "stray" {
  average = 1
}

middleware "labelled" {
  in_flight "x" {
    max = 1
  }
}

middleware "inner" {
  in_flight {
    maxx = 1
  }
}

middleware "none" {
  in_flight {
    max = 1
  }
}

middleware {
  in_flight {
    max = 1
  }
}
