// Package cluster is one Hourglass node's replication layer: hashicorp/raft
// with a raft-boltdb/v2 log and stable store, a file snapshot store and a
// TCP transport (mutual TLS with Config.TLS), wrapped around the fsm
// package's state machine, and memberlist gossip (encrypted with
// Config.GossipKeys) through which nodes find each other.
//
// It bootstraps a new single-node cluster on an empty data directory and
// resumes from an existing one; it coalesces concurrent writes into shared
// raft entries (group commit, see Propose); and it tells its owner when this
// node becomes leader (after a Barrier, so the state machine has applied
// everything committed before) and when it stops being leader. It contains
// no firing logic: the scheduler is the owner's business.
//
// With TLS, a member is a node holding a certificate of the cluster's CA:
// members refuse other peers' connections, and the leader adds a node to
// the raft configuration (or the bootstrapping node includes it) only after
// its raft address passes the TLS handshake. NewCA and NewCert make such
// certificates.
//
// Backup and Restore take and replace the whole state as a backup archive
// (package fsm/archive): a backup is one read transaction after a barrier;
// a restore is checked in full before raft.Restore installs it on every
// node, with leader duties stopped around it.
//
// Data directory layout:
//
//	raft.db      raft log and stable store (fsynced on every write)
//	state.db     the state machine (fsm package, NoSync)
//	snapshots/   raft snapshots (two kept)
//	restore-*/   a backup being restored (removed after, or at start)
package cluster
