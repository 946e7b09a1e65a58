// Package history records the API calls tests make against a cluster,
// with when each was invoked and when it returned, and checks that the
// history is linearizable (with porcupine, the checker etcd's robustness
// tests use) against a model of one task: created once, cancelled only
// while scheduled (a cancel wins if and only if it comes before the fire),
// read back as it last was, changed with If-Match only at the version
// read. Deliveries a receiver saw count as observations that the task was
// fired before they arrived. A history that is not linearizable comes
// with porcupine's visualization, an HTML page, to see why.
package history
