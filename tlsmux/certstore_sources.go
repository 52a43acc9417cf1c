package tlsmux

import "slices"

// Sources returns a copy of the pairs the store serves, in order. A
// configuration reload compares them with the new configuration's to decide
// whether to keep the store (and re-read changed files with Reload) or to
// load a new one.
func (s *CertStore) Sources() []CertSource { return slices.Clone(s.sources) }
