package leader

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestPackID(t *testing.T) {
	v7 := uuid.Must(uuid.NewV7()).String()
	for _, tc := range []struct {
		id     string
		packed bool
	}{
		{v7, true},
		{strings.ToUpper(v7), false}, // unpacking would lower its case
		{"order-42-timeout", false},
		{"0123456789abcdef", false},
		{strings.Repeat("x", 36), false},
		{"", false},
	} {
		key := packID(tc.id)
		if packed := key != tc.id; packed != tc.packed {
			t.Errorf("packID(%q) = %q: packed %v, want %v", tc.id, key, packed, tc.packed)
		}
		if tc.packed && len(key) != 17 {
			t.Errorf("packID(%q) is %d bytes, want 17", tc.id, len(key))
		}
		if got := unpackID(key); got != tc.id {
			t.Errorf("unpackID(packID(%q)) = %q", tc.id, got)
		}
	}
}
