admin {}

log {
  access {}
}
