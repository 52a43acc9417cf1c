tls {
  min_version = "1.0"
  certificate "a" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
    default   = true
  }
  certificate "b" {
    cert_file = "certs/other.crt"
    key_file  = "certs/other.key"
    default   = true
  }
  certificate "a" {
    cert_file = "certs/other.crt"
    key_file  = "certs/other.key"
  }
  certificate "nofiles" {}
  certificate "empty" {
    cert_file = ""
    key_file  = ""
  }
  certificate "typo" {
    cert      = "certs/site.crt"
    key_file  = "certs/site.key"
    defualt   = true
  }
  certificate {}
  certificate "x" "y" {}
  certificate "types" {
    cert_file = 1
    key_file  = "certs/site.key"
    default   = "maybe"
  }
}
tls {
  min_version = "1.3"
}
