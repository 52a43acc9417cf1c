entrypoint "web" {
  address = ":8080"
}

http_route "app" {
  entrypoints = ["web"]
  middlewares = ["hashes", "nousers", "emptylist", "file", "missing", "empty", "settings"]
  service     = "app"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}

middleware "hashes" {
  basic_auth {
    users = [
      "alice:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC",
      "plain:secret",
      "md5:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/",
      "sha1:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
      "sha512:$6$salt$abc",
      "short:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjX",
      "cost:$2a$99$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC",
      "long:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjCxx",
      "chars:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OU!C",
      "sha256:$5$rounds=10$salt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
      "sha256b:$5$saltsalt$tooshort",
      "alice:$2b$04$C0UCewHbxCvtSmypK941Uuaw1EuL.SpKD6Wu9DV3ZHM2B2l8qGh7O",
      "nocolon",
      ":$2b$04$C0UCewHbxCvtSmypK941Uuaw1EuL.SpKD6Wu9DV3ZHM2B2l8qGh7O",
    ]
  }
}

middleware "nousers" {
  basic_auth {
    realm = "x"
  }
}

middleware "emptylist" {
  basic_auth {
    users = []
  }
}

middleware "file" {
  basic_auth {
    users      = ["alice:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC"]
    users_file = "bad_users.htpasswd"
  }
}

middleware "missing" {
  basic_auth {
    users_file = "no_such_users.htpasswd"
  }
}

middleware "empty" {
  basic_auth {
    users_file = "empty_users.htpasswd"
  }
}

middleware "settings" {
  basic_auth {
    users        = ["alice:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC"]
    users_file   = ""
    realm        = "say \"hi\""
    header_field = "x user"
  }
}
