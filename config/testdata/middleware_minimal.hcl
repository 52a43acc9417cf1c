# Each kind with only its required attributes: the golden shows the defaults.
entrypoint "web" {
  address     = ":8080"
  middlewares = ["https"]
}

http_route "app" {
  entrypoints = ["web"]
  middlewares = ["limit", "conc", "auth", "fwd", "hdrs", "zip", "old", "strip", "add", "replace", "rewrite", "allow", "deny", "body", "pages"]
  service     = "app"
}

middleware "https" {
  redirect_scheme {}
}

middleware "limit" {
  rate_limit {
    average = 50
  }
}

middleware "conc" {
  in_flight {
    max = 8
  }
}

middleware "auth" {
  basic_auth {
    users_file = "users.htpasswd"
  }
}

middleware "fwd" {
  forward_auth {
    address = "http://127.0.0.1:9000"
  }
}

middleware "hdrs" {
  headers {
    hsts {}
  }
}

middleware "zip" {
  compress {}
}

middleware "old" {
  redirect_regex {
    regex       = "^http://old/(.*)"
    replacement = "http://new/$1"
  }
}

middleware "strip" {
  strip_prefix {
    prefixes = ["/"]
  }
}

middleware "add" {
  add_prefix {
    prefix = "/"
  }
}

middleware "replace" {
  replace_path {
    path = "/"
  }
}

middleware "rewrite" {
  replace_path_regex {
    regex       = "^/a"
    replacement = "/b"
  }
}

middleware "allow" {
  ip_allow {
    cidrs = ["127.0.0.1"]
  }
}

middleware "deny" {
  ip_deny {
    cidrs = ["::1"]
  }
}

middleware "body" {
  max_body {
    bytes = 1
  }
}

middleware "pages" {
  error_pages {
    statuses = ["404"]
    service  = "app"
    path     = "/"
  }
}

# Used by nothing: a warning.
middleware "spare" {
  headers {
    security = true
  }
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}
