entrypoint "web" {
  address = ":8080"
}

http_route "app" {
  entrypoints = ["web"]
  middlewares = ["star", "mixed", "origins", "missing", "empty", "hsts"]
  service     = "app"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

middleware "star" {
  headers {
    cors {
      allow_origins     = ["*"]
      allow_credentials = true
    }
  }
}

middleware "mixed" {
  headers {
    cors {
      allow_origins = ["https://a.example", "*"]
      max_age       = "-1s"
    }
  }
}

middleware "origins" {
  headers {
    cors {
      allow_origins = [
        "https://a.example/",
        "https://a.example/app",
        "a.example",
        "https://*.example.com",
        "https://a.example:99999",
        "https://user@a.example",
        "https://b.example",
        "HTTPS://B.example",
      ]
      allow_headers  = []
      expose_headers = ["ok", "not ok"]
    }
  }
}

middleware "missing" {
  headers {
    cors {
      allow_methods = ["GET"]
    }
  }
}

middleware "empty" {
  headers {
    cors {
      allow_origins = []
    }
  }
}

middleware "hsts" {
  headers {
    hsts {
      max_age = "-1h"
      preload = true
    }
  }
}
