entrypoint "web" {
  address = ":8080"
}

http_route "app" {
  entrypoints = ["web"]
  middlewares = ["rl1", "rl2", "if", "fa1", "fa2", "c1", "c2", "c3", "rs", "rr1", "rr2", "sp1", "sp2", "ap", "rp", "rpr", "ia1", "ia2", "id", "mb1", "mb2", "mb3", "ep1", "ep2", "h1", "h2", "h3", "h4"]
  service     = "app"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

middleware "rl1" {
  rate_limit {
    burst    = 0
    period   = "0s"
    key      = "client-ip"
    max_keys = 0
  }
}

middleware "rl2" {
  rate_limit {
    average = 0
    period  = "soon"
    key     = "header:bad name"
  }
}

middleware "if" {
  in_flight {
    key = "cookie:x"
  }
}

middleware "fa1" {
  forward_auth {
    timeout = "0s"
  }
}

middleware "fa2" {
  forward_auth {
    address         = "ftp://auth.internal"
    request_headers = ["ok", "not ok", "OK"]
  }
}

middleware "c1" {
  compress {
    encodings  = ["gzip", "deflate", "gzip", "brr"]
    min_length = -1
    types      = ["text", "application/json", "Application/JSON", "a/b/c", "text/*", "*/*"]
  }
}

middleware "c2" {
  compress {
    encodings = []
    types     = []
  }
}

middleware "c3" {
  compress { min_length = 0 }
}

middleware "rs" {
  redirect_scheme {
    scheme = "ftp"
    port   = 70000
  }
}

middleware "rr1" {
  redirect_regex {
    regex = "^http://(a"
  }
}

middleware "rr2" {
  redirect_regex {
    regex       = "^http://(.*)$"
    replacement = "https://${1}"
  }
}

middleware "sp1" {
  strip_prefix {
    prefixes = []
  }
}

middleware "sp2" {
  strip_prefix {
    prefixes = ["api", "/v1", "/v1", "/v2/*"]
  }
}

middleware "ap" {
  add_prefix {
    prefix = "api"
  }
}

middleware "rp" {
  replace_path {}
}

middleware "rpr" {
  replace_path_regex {
    regex       = "[z-a]"
    replacement = ""
  }
}

middleware "ia1" {
  ip_allow {
    cidrs = []
    depth = -1
  }
}

middleware "ia2" {
  ip_allow {
    cidrs = ["10.0.0.0/33"]
  }
}

middleware "id" {
  ip_deny {
    cidrs = ["10.0.0.1"]
    depth = 1
  }
}

middleware "mb1" {
  max_body {}
}

middleware "mb2" {
  max_body {
    bytes = 0
  }
}

middleware "mb3" {
  max_body {
    bytes = 1.5
  }
}

middleware "ep1" {
  error_pages {}
}

middleware "ep2" {
  error_pages {
    statuses = ["300", "500-600", "abc", 404, "599-500"]
    service  = "app"
    path     = "errors.html"
  }
}

middleware "h1" {
  headers {}
}

middleware "h2" {
  headers {
    security = false
    request {}
  }
}

middleware "h3" {
  headers {
    request {
      set    = { "bad name" = "1", "X-A" = "line\nbreak", "content-length" = "5" }
      add    = {}
      remove = ["transfer-encoding", "x-a", "X-A"]
    }
    response {
      set = { "x-a" = "1", "X-A" = "2" }
    }
    hsts {
      max_age = "0s"
    }
  }
}

middleware "h4" {
  headers {
    request {
      sett = {}
    }
    cors {
      allow_origins = ["https://a.example"]
      allow_methods = ["GET", "get", "bad method"]
    }
  }
}
