// Package raftmux carries the raft traffic of many raft groups over one
// listener, so that a node hosting replicas of several groups has one
// raft port (and one TLS setup) for all of them. Each connection starts
// with a header naming its group: a magic byte and the group id (4 bytes,
// big-endian), written by the dialing side before raft's own bytes. The
// accepting side reads it (within a deadline, so a silent client cannot
// hold a goroutine) and hands the connection to that group's Layer, a
// raft.StreamLayer; a connection for a group the node does not host is
// closed.
//
// It is the transport half of running several groups per node; the
// groups themselves (slots, placement, routing) are built on top.
package raftmux
