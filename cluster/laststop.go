package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The state file is written without fsync (package fsm): a process that
// dies leaves its writes in the kernel's page cache, which writes them out
// anyway, but a power cut or a kernel crash loses those not written yet,
// and can leave the file torn (a meta page pointing at pages never
// written) in a way bbolt cannot see. So a replica records, beside its
// state file, that the file is open and under which boot of the kernel
// (openMarker, holding /proc/sys/kernel/random/boot_id), and removes that
// record once the file is closed and synced. At the next start:
//
//   - no record: the file was closed cleanly; trust it.
//   - a record of this boot: only the process died; the page cache kept
//     every write; trust it.
//   - a record of another boot, or no boot id to compare: the kernel may
//     have lost writes; do not trust the file, rebuild it from what raft
//     made durable (the newest snapshot, then the log after it).
const openMarker = "state.open"

// lastStopUnsafe says why the state file in dir may have lost writes, or
// "" when it can be trusted; bootID is the running kernel's ("" when not
// known).
func lastStopUnsafe(dir, bootID string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, openMarker))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read %s: %w", openMarker, err)
	}
	opened := strings.TrimSpace(string(data))
	switch {
	case opened == "" || bootID == "":
		return "the state file was not closed, and whether the machine restarted since is not known", nil
	case opened != bootID:
		return fmt.Sprintf("the state file was not closed before the machine restarted (boot %s, now %s): writes not yet on disk may be lost", opened, bootID), nil
	default:
		return "", nil
	}
}

// markOpen records, durably, that the state file in dir is open under
// boot bootID.
func markOpen(dir, bootID string) error {
	if err := writeFileDurably(dir, openMarker, []byte(bootID+"\n")); err != nil {
		return fmt.Errorf("record the state file open: %w", err)
	}
	return nil
}

// markClosed removes the record of markOpen, once the state file is
// closed and synced.
func markClosed(dir string) error {
	if err := os.Remove(filepath.Join(dir, openMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("record the state file closed: %w", err)
	}
	return syncDir(dir)
}

// readBootID is the running kernel's boot id, or "" where there is none
// to read (not Linux).
func readBootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(data))
}
