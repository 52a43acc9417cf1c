log {
  access {
    format = "apache"
    path   = ""
  }
}

admin {
  address = ":9901"
  pprof   = "yes"
}
