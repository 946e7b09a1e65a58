package leader

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// itemKind says what a wheel entry stands for.
type itemKind uint8

const (
	// itemDue: a scheduled task, released when it may be dispatched.
	itemDue itemKind = iota
	// itemLeaseEnd: a leased task, released when its lease runs out.
	itemLeaseEnd
)

// item is what the wheel holds for a task: enough to dispatch it. With
// the wheel's own fields it fills a 64-byte allocation exactly.
type item struct {
	key   string // the task id, packed (packID)
	due   int64  // unix ns
	route uint32 // index into loop.routes
	kind  itemKind
	// gone: cancelled while waiting in a ready list; skipped there.
	gone bool
}

// packID shortens an id in canonical UUID form (the ids the server makes)
// to a NUL byte and the UUID's 16 bytes: the wheel and its index then hold
// 24 bytes of heap for it instead of 48. Other ids are kept as they are;
// they are printable ASCII, so never start with NUL.
func packID(id string) string {
	if len(id) != 36 || strings.ContainsAny(id, "ABCDEF") {
		return id // upper case: unpacking would change it
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	var key [17]byte
	copy(key[1:], u[:])
	return string(key[:])
}

// unpackID is the id packID packed.
func unpackID(key string) string {
	if len(key) != 1+len(uuid.UUID{}) || key[0] != 0 {
		return key
	}
	var u uuid.UUID
	copy(u[:], key[1:])
	return u.String()
}

const (
	// scanBatch caps the due-index entries read per load.
	scanBatch = 10_000
	// retryBehind is how soon the loader looks again when it stopped early
	// (catch-up rate, MaxLoaded, or scanBatch).
	retryBehind = 10 * time.Millisecond
	// maxKeyID sorts after every task id (ids are printable ASCII).
	maxKeyID = "\xff"
)
