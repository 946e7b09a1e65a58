// Package cluster is one Hourglass node's replication layer. A cluster's
// tasks are spread over raft groups (a task's slot, package slots, says
// which); a Node hosts replicas (Group) of the groups the placement puts
// on it: hashicorp/raft with a raft-boltdb/v2 log and stable store, a file
// snapshot store and the fsm package's state machine, in a directory of
// its own. All groups share the node's one raft listener (package
// raftmux; mutual TLS with Config.TLS) and its memberlist gossip
// (encrypted with Config.GossipKeys), through which nodes find each other
// and publish the state of their replicas.
//
// The meta group (raft group 0, on every node, up to five of them voting,
// its state in memory) holds the Placement: for each group, the nodes of
// its Config.Replicas voting replicas, the first its preferred leader. Its
// leader changes the placement one move at a time as nodes join, leave,
// or stay unreachable for Config.DeadAfter (nextMove), and waits for each
// move to be carried out: the group's leader adds the new node as a
// non-voter, promotes it once it has caught up, removes the node moved
// away, and hands leadership to the preferred leader (reconcilePlacement);
// every node opens the replicas placed on it and deletes those moved away
// (followPlacement).
//
// It bootstraps a new single-node cluster on an empty data directory and
// resumes from an existing one; it coalesces concurrent writes to a group
// into shared raft entries (group commit, see Group.Propose); and it tells
// its owner when this node becomes leader of a group (after a Barrier, so
// the state machine has applied everything committed before) and when it
// stops being leader. It contains no firing logic: the scheduler is the
// owner's business.
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
// Data directory layout (a directory of a single-group release, with the
// files of group 1 at its top, is moved into it at start):
//
//	groups.json             how many groups the cluster has
//	meta/raft.db            the meta group's raft log (and meta/snapshots/)
//	groups/<id>/raft.db     the group's raft log and stable store (fsynced)
//	groups/<id>/state.db    its state machine (fsm package, NoSync)
//	groups/<id>/snapshots/  its raft snapshots (two kept)
//	groups/<id>/restore-*/  a backup being restored (removed after, or at start)
package cluster
