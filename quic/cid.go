package quic

// maxCIDsPerFlow is how many backend-chosen connection IDs a flow keeps:
// those of the backend's long headers (handshake, Retry) and the ones seen
// in its client's short headers. IDs issued in encrypted NEW_CONNECTION_ID
// frames are learned only once the client uses them.
const maxCIDsPerFlow = 4

// cidTable maps the connection IDs that backends chose to their flows, so
// a short-header packet from a new client address finds its flow. Guarded
// by Demux.mu.
type cidTable struct {
	m   map[string]*flow
	max int
	// byLen counts the IDs of each length: a short header does not carry
	// its DCID's length, so lookups try each length in use (usually one).
	byLen [MaxCIDLen + 1]int
}

func (t *cidTable) init(max int) {
	t.m = make(map[string]*flow)
	t.max = max
}

// add records cid for f. The oldest of f's IDs makes room for a fifth; a
// full table or an ID already held by another flow is refused (false).
func (t *cidTable) add(f *flow, cid []byte) bool {
	if len(cid) == 0 || len(cid) > MaxCIDLen {
		return true
	}
	if g, ok := t.m[string(cid)]; ok {
		return g == f
	}
	if f.nCIDs == maxCIDsPerFlow {
		t.delete(f.cids[0])
		copy(f.cids[:], f.cids[1:])
		f.nCIDs--
	}
	if len(t.m) >= t.max {
		return false
	}
	s := string(cid)
	t.m[s] = f
	t.byLen[len(s)]++
	f.cids[f.nCIDs] = s
	f.nCIDs++
	return true
}

func (t *cidTable) delete(cid string) {
	if _, ok := t.m[cid]; ok {
		delete(t.m, cid)
		t.byLen[len(cid)]--
	}
}

// remove forgets every ID of f.
func (t *cidTable) remove(f *flow) {
	for _, c := range f.cids[:f.nCIDs] {
		if t.m[c] == f {
			t.delete(c)
		}
	}
	f.nCIDs = 0
}

// lookup finds the flow of a long header's DCID.
func (t *cidTable) lookup(dcid []byte) *flow {
	if len(t.m) == 0 {
		return nil
	}
	return t.m[string(dcid)]
}

// lookupShort finds the flow of a short-header packet by trying each ID
// length in use.
func (t *cidTable) lookupShort(b []byte) *flow {
	if len(t.m) == 0 {
		return nil
	}
	for n := 1; n <= MaxCIDLen; n++ {
		if t.byLen[n] == 0 {
			continue
		}
		if dcid, err := ShortHeaderDCID(b, n); err == nil {
			if f := t.m[string(dcid)]; f != nil {
				return f
			}
		}
	}
	return nil
}
