tls {
  min_version = "1.4"
}
