package quic

import (
	"bytes"
	"testing"
)

// TestInitialKeys checks the client Initial secrets against RFC 9001
// Appendix A.1 and RFC 9369 Appendix A.1.
func TestInitialKeys(t *testing.T) {
	dcid := unhex(t, "8394c8f03e515708")
	tests := []struct {
		name                string
		version             uint32
		secret, key, iv, hp string
	}{
		{
			name:    "v1 RFC 9001 A.1",
			version: Version1,
			secret:  "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
			key:     "1f369613dd76d5467730efcbe3b1a22d",
			iv:      "fa044b2f42a3fd3b46fb255c",
			hp:      "9f50449e04a0e810283a1e9933adedd2",
		},
		{
			name:    "v2 RFC 9369 A.1",
			version: Version2,
			secret:  "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
			key:     "8b1a0bc121284290a29e0971b5cd045d",
			iv:      "91f73e2351d8fa91660e909f",
			hp:      "45b95e15235d6f45a6b19cbcb0294ba9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := deriveClientInitial(tt.version, dcid)
			for _, c := range []struct {
				what      string
				got, want []byte
			}{
				{"secret", s.secret[:], unhex(t, tt.secret)},
				{"key", s.key[:], unhex(t, tt.key)},
				{"iv", s.iv[:], unhex(t, tt.iv)},
				{"hp", s.hp[:], unhex(t, tt.hp)},
			} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("%s = %x, want %x", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestKeysReusedForSameConnection(t *testing.T) {
	var k openKeys
	if err := k.set(Version1, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	aead := k.aead
	if err := k.set(Version1, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil || k.aead != aead {
		t.Fatal("keys for the same DCID were derived again")
	}
	if err := k.set(Version2, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil || k.aead == aead {
		t.Fatal("keys for another version were reused")
	}
	if err := k.set(Version2, []byte{1, 2, 3, 4, 5, 6, 7}); err != nil || k.dcidLen != 7 {
		t.Fatal("keys for another DCID were reused")
	}
}
