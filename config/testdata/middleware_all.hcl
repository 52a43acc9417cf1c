# Every kind with every attribute, in a second spelling where one exists.
entrypoint "web" {
  address     = ":8080"
  middlewares = ["to_http", "hdrs"]
}

entrypoint "dns" {
  address = ":5353"
  network = "udp"
}

http_route "app" {
  entrypoints = ["web"]
  # hdrs also runs on the entrypoint: a warning.
  middlewares = ["limit", "conc", "auth", "fwd", "hdrs", "zip", "old", "strip", "add", "replace", "rewrite", "allow", "deny", "body", "pages"]
  service     = "app"
}

udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}

middleware "to_http" {
  redirect_scheme {
    scheme    = "HTTP"
    port      = 80
    permanent = false
  }
}

middleware "limit" {
  rate_limit {
    average  = "10"
    burst    = 1
    period   = "250ms"
    key      = "client_ip"
    max_keys = 1
  }
}

middleware "conc" {
  in_flight {
    max = 2147483647
    key = "header:authorization"
  }
}

middleware "auth" {
  basic_auth {
    users        = ["erin:$5$rounds=5000$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"]
    users_file   = "users.htpasswd"
    realm        = "Staff only (it's 'private')"
    strip_header = true
    header_field = "REMOTE-USER"
  }
}

middleware "fwd" {
  forward_auth {
    address              = "HTTP://auth.internal/check?x=1"
    trust_forward_header = false
    request_headers      = ["*"]
    response_headers     = ["remote-user"]
    timeout              = "1ms"
  }
}

middleware "hdrs" {
  headers {
    request {
      set    = { "x-empty" = "", "Host" = "backend.internal" }
      add    = { "via" = "proxynow" }
      remove = ["cookie", "X-Forwarded-User"]
    }
    response {
      set    = { "content-security-policy" = "default-src 'self'" }
      add    = { "set-cookie" = "a=b" }
      remove = ["x-powered-by"]
    }
    cors {
      allow_origins     = ["*"]
      allow_methods     = ["PUT"]
      allow_headers     = ["*"]
      expose_headers    = ["etag"]
      allow_credentials = false
      max_age           = "0s"
    }
    hsts {
      max_age            = "1h"
      include_subdomains = false
      preload            = true
    }
    security = false
  }
}

middleware "zip" {
  compress {
    encodings  = ["br"]
    min_length = 1
    types      = ["image/svg+xml"]
  }
}

middleware "old" {
  redirect_regex {
    regex       = "(?i)^http://OLD/"
    replacement = "https://new/"
    permanent   = true
  }
}

middleware "strip" {
  strip_prefix {
    prefixes = ["/a/", "/b"]
  }
}

middleware "add" {
  add_prefix {
    prefix = "/v2/"
  }
}

middleware "replace" {
  replace_path {
    path = "/static/index.html"
  }
}

middleware "rewrite" {
  replace_path_regex {
    regex       = "^/(\\w+)/(\\d+)$"
    replacement = "/$2/$${1}"
  }
}

middleware "allow" {
  ip_allow {
    cidrs = ["10.1.2.3/8", "fe80::/10"]
    depth = 3
  }
}

middleware "deny" {
  ip_deny {
    cidrs = ["0.0.0.0/0", "::/0"]
  }
}

middleware "body" {
  max_body {
    bytes = "9223372036854775807"
  }
}

middleware "pages" {
  error_pages {
    statuses = [400, "401-403", "599"]
    service  = "errors"
    path     = "/{status}.html"
  }
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

# Used only by error_pages: not reported unused.
service "errors" {
  respond {
    status = 503
    body   = "sorry"
  }
}

service "dns" {
  backend "127.0.0.1:53" {}
}
