package scheduler

import "testing"

// The delivery limits are the cluster's: a group's scheduler takes its
// share of them, at least one, defaults included.
func TestAGroupTakesItsShareOfTheLimits(t *testing.T) {
	for _, c := range []struct {
		cfg                                          Config
		workers, target, queue, catchUp, maxInFlight int
	}{
		{Config{}, 256, 64, 128, 5000, 16384},
		{Config{Share: 3}, 85, 21, 42, 1666, 5461},
		{Config{Share: 128, Workers: 100}, 1, 1, 1, 39, 128},
	} {
		cfg := c.cfg
		cfg.setDefaults()
		got := []int{cfg.Workers, cfg.TargetConcurrency, cfg.QueueConcurrency, cfg.CatchUpRate, cfg.MaxInFlight}
		want := []int{c.workers, c.target, c.queue, c.catchUp, c.maxInFlight}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("share %d: workers, target, queue, catch-up, in flight = %v, want %v", c.cfg.Share, got, want)
				break
			}
		}
		if core := cfg.core(); core.Workers != cfg.Workers || core.MaxInFlight != cfg.MaxInFlight {
			t.Errorf("share %d: the core gets %d workers, %d in flight; the shell %d, %d", c.cfg.Share, core.Workers, core.MaxInFlight, cfg.Workers, cfg.MaxInFlight)
		}
	}
}
