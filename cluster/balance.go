package cluster

import "time"

// DefaultBalanceInterval is the least time between two hand-overs of a
// group's leadership to its preferred leader (see reconcilePlacement).
const DefaultBalanceInterval = 2 * time.Second
