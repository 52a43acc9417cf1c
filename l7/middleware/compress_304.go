package middleware

import (
	"net/http"
	"strings"
)

// notModified gives a 304 the Vary and ETag the 200 to the same request
// would have had (RFC 9110 section 15.4.5) when that 200 may have been
// compressed: otherwise a cache holding the compressed 200 under W/"x"
// gets "x" back and finds no stored response to update (RFC 9111 section
// 4.3.4). A 304 rarely has a Content-Type; when it has one it is matched.
func (w *compressWriter) notModified() {
	h := w.rw.Header()
	if len(h["Content-Encoding"]) > 0 && h["Content-Encoding"][0] != "" ||
		hasToken(h["Cache-Control"], "no-transform") {
		return
	}
	if ct, ok := h["Content-Type"]; ok && (len(ct) == 0 || !w.c.typeOK(ct[0])) {
		return
	}
	addVary(h) // as on an identity 200 chosen because of Accept-Encoding
	if w.codec != nil {
		weakenETag(h)
	}
}

// weakenETag marks a strong ETag weak: the compressed bytes differ from
// the identity representation's (RFC 9110 section 8.8.1).
func weakenETag(h http.Header) {
	if et := h["Etag"]; len(et) > 0 && et[0] != "" && !strings.HasPrefix(et[0], "W/") {
		h["Etag"] = []string{"W/" + et[0]}
	}
}
