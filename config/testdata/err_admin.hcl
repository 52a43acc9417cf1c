log {
  access {
    format = "apache"
    path   = ""
    buffer = 0
  }
}

admin {
  address = ":9901"
  pprof   = "yes"
}
