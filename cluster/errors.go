package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

var (
	// ErrNotLeader: this node is not the leader, so the write was not
	// applied. It is safe to retry elsewhere.
	ErrNotLeader = errors.New("this node is not the raft leader")
	// ErrIndeterminate: leadership was lost, the node shut down or the
	// caller gave up before the write's outcome was known. It may or may
	// not have been applied; retry with the same task id to find out.
	ErrIndeterminate = errors.New("the write's outcome is unknown (leadership lost or timed out)")
	// ErrTooLarge: the command is larger than one raft entry may be.
	ErrTooLarge = errors.New("command too large for one raft entry")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("node is shutting down")
	// ErrRestoring: a restore from a backup replaced the state while the
	// write waited for its commit; the write did not happen.
	ErrRestoring = errors.New("a restore from a backup replaced the state before the write committed; it did not happen")
)

// translate maps raft's errors onto ours, once, at the boundary.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrIndeterminate, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrIndeterminate, err)
	case errors.Is(err, raft.ErrAbortedByRestore):
		return ErrRestoring
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	default:
		return err
	}
}
