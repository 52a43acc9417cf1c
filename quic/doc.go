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
//
// The passthrough demultiplexer (Demux) promises:
//
//   - One socket serves both paths: a client whose SNI matches a PassRoute
//     (exact or "*." wildcard, case-insensitive, trailing dot ignored) is
//     relayed byte for byte to one backend of the route's pool, from a
//     connected socket per flow; everything else is handed, unmodified and
//     in order, to the local server through Local (a net.PacketConn for
//     quic.Transport). Only the first flight of a new client address is
//     parsed; routed and local addresses take a map lookup per datagram.
//   - A flow survives NAT rebinding: short headers from a new address that
//     carry a connection ID seen in the backend's long headers or in the
//     client's earlier short-header packets (also one coalesced behind its
//     long-header packets) move the flow. A client that changes
//     address and connection ID at once (deliberate migration to a fresh ID
//     issued in an encrypted frame) cannot be recognised without
//     terminating QUIC; it reaches the local server, which cannot serve it.
//   - Every table is bounded (DemuxOptions: pending addresses, bytes and time
//     per pending address, flows, local addresses, connection IDs, the
//     local queue); what a bound refuses is dropped and counted in Stats.
//     A flow whose client sends nothing but Initials (forged from a spoofed
//     address: Initial keys are public) ends after HelloTimeout.
//     Unknown versions and non-QUIC datagrams go to the local server (which
//     answers Version Negotiation or drops them), or are dropped without one.
//   - Serve, Shutdown and Close have net/http's shape; Close waits for every
//     goroutine the Demux started.
package quic
