// Package slots maps task ids to slots, and slots to raft groups: a
// task's slot is a hash of its id over a fixed number of slots, the same
// on every node and in every release (Count and the hash never change:
// the golden tests pin them), and a table says which group holds each
// slot. An id lives in exactly one slot, so its idempotency holds
// cluster-wide while each group checks only its own.
// A schedule's occurrences (ids "schedule@time") hash by the schedule's
// id, so they live in the schedule's group.
package slots
