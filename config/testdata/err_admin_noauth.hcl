admin {
  address      = "[::]:9901"
  allow_remote = true
}
