package slots

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Count is the number of slots, fixed forever.
const Count = 1024

// Slot is a slot number, below Count.
type Slot uint16

// Group is a raft group's id.
type Group uint32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Of is the slot of task id: CRC-32C of the id's bytes, modulo Count.
// Of an id with an "@" (the id of a schedule's occurrence, a character
// no client's id may hold) only the part before the first "@" counts, so
// a schedule and its occurrences share a slot, and so a group.
func Of(id string) Slot {
	if i := strings.IndexByte(id, '@'); i >= 0 {
		id = id[:i]
	}
	return Slot(crc32.Checksum([]byte(id), castagnoli) % Count)
}

// Table says which group holds each slot.
type Table [Count]Group

// Even spreads the slots over groups 1..n in n contiguous runs of equal
// length (within one slot).
func Even(n int) (Table, error) {
	var t Table
	if n < 1 || n > Count {
		return t, fmt.Errorf("slots: %d groups; want 1 to %d", n, Count)
	}
	for s := range t {
		t[s] = Group(s*n/Count + 1)
	}
	return t, nil
}

// GroupOf is the group that holds task id.
func (t *Table) GroupOf(id string) Group { return t[Of(id)] }

// Steer rewrites the last digits hex digits of id (lower-case hex, as a
// UUID's are) at random until id falls in group g, and reports whether it
// did within a bound of tries (as many as there are choices). id must hold
// no "@". The CRC of the bytes before those digits is taken once, and
// each try costs only the CRC of the digits: drawing whole new ids until
// one lands in g would cost a clock read and random bytes per try, and
// there are as many tries as groups. The digits are drawn at random, not
// tried in order: the first in order to land in g favours some of its
// slots over others.
func (t *Table) Steer(id []byte, digits int, g Group) bool {
	const hex = "0123456789abcdef"
	head := len(id) - digits
	crc := crc32.Update(0, castagnoli, id[:head])
	var v uint64 // random bits, 4*digits used per try
	left := 0
	for range 1 << (4 * digits) {
		if left < 4*digits {
			v, left = rand.Uint64(), 64
		}
		for i := range digits {
			id[head+i] = hex[v>>(4*i)&0xf]
		}
		v, left = v>>(4*digits), left-4*digits
		if t[crc32.Update(crc, castagnoli, id[head:])%Count] == g {
			return true
		}
	}
	return false
}

// Slots lists the slots group g holds, in order.
func (t *Table) Slots(g Group) []Slot {
	var out []Slot
	for s, owner := range t {
		if owner == g {
			out = append(out, Slot(s))
		}
	}
	return out
}

// String is the group's id in decimal.
func (g Group) String() string { return strconv.FormatUint(uint64(g), 10) }

// Groups is how many groups the table spreads the slots over: 1 to
// Groups, in order, as Even makes them, so the last slot's.
func (t *Table) Groups() int { return int(t[Count-1]) }
