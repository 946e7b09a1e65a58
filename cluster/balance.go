package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// DefaultBalanceInterval is how often a node looks at the groups it leads
// to hand one over to its preferred leader.
const DefaultBalanceInterval = 2 * time.Second

// balanceLeaders spreads the groups' leaders evenly over the nodes (of a
// cluster of more than one group): each
// group has a preferred leader, the voter at place id-1 (modulo their
// number) of its voters ordered by id, and a node leading a group whose
// preferred leader is another voter, alive in gossip, hands the group over
// with a leadership transfer. One group at a time, one per interval, so
// that leaders move one after another; while the preferred node is down
// the group stays where an election put it.
func (n *Node) balanceLeaders(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.BalanceInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		groups := n.Groups()
		if len(groups) < 2 {
			continue // one group: wherever it is elected is as good
		}
		alive := n.gossip.alive()
		for _, g := range groups {
			if !g.IsLeader() {
				continue
			}
			to, ok := g.preferredLeader()
			if !ok || string(to.ID) == n.cfg.NodeID {
				continue
			}
			if _, up := alive[string(to.ID)]; !up {
				continue
			}
			g.log.Info("handing leadership to the group's preferred leader", "to", to.ID)
			if err := g.raft.LeadershipTransferToServer(to.ID, to.Address).Error(); err != nil {
				g.log.Warn("leadership transfer failed; trying again later", "to", to.ID, "err", err)
			}
			break // one move at a time
		}
	}
}

// preferredLeader is the voter that should lead the group when it is up:
// the group ids take the voters in turn.
func (g *Group) preferredLeader() (raft.Server, bool) {
	future := g.raft.GetConfiguration()
	if future.Error() != nil {
		return raft.Server{}, false
	}
	var voters []raft.Server
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	if len(voters) == 0 {
		return raft.Server{}, false
	}
	slices.SortFunc(voters, func(a, b raft.Server) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return voters[int(g.id-1)%len(voters)], true
}
