// Package quic routes QUIC on a UDP entrypoint: it reads the SNI of a
// client's first flight without terminating the connection, so a
// quic_route can pass it through to a backend untouched, and it serves
// HTTP/3 for everything else.
//
// The Initial parser (Collector, ParseLongHeader, ShortHeaderDCID) promises:
//
//   - QUIC v1 (RFC 9000/9001) and v2 (RFC 9369) client Initials are opened
//     with keys derived from the client's original Destination Connection ID;
//     other versions are reported as ErrUnsupportedVersion, never guessed at.
//   - A ClientHello is reassembled from CRYPTO frames in any order, with
//     duplicates and overlaps, from packets coalesced in one datagram and
//     spread over several datagrams, and parsed with tlsmux.ParseHandshake.
//   - Memory is bounded: at most MaxCryptoData bytes (64 KiB by default) of
//     CRYPTO data and MaxFragments holes per connection; more is ErrTooLarge.
//   - Any input gets an error or a result, never a panic (FuzzCollector); the
//     caller's datagrams are never modified.
//   - A reused Collector allocates nothing per datagram once it has grown its
//     buffers; deriving a new connection's keys costs a few allocations (the
//     AES and GCM states of crypto/aes and crypto/cipher).
//
// It opens client Initials only: it holds no server keys and never sends.
package quic
