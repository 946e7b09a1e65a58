package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hourglass-scheduler/hourglass/slots"
)

// layoutFile records, in the data directory, how many groups the cluster
// has; groups live in groups/<id>/.
const layoutFile = "groups.json"

// legacyFiles are what a data directory of a single-group release holds
// at its top: they become group 1's.
var legacyFiles = []string{"raft.db", "state.db", "snapshots"}

type layout struct {
	Groups int `json:"groups"`
}

func groupDir(dataDir string, id slots.Group) string {
	return filepath.Join(dataDir, "groups", id.String())
}

// readLayout returns the group count the data directory records (0 for
// a new directory). A directory of a single-group release is moved into
// the new layout first, as group 1 of one: nothing in it changes but its
// place.
func readLayout(dataDir string) (int, error) {
	if err := removeStaleRestores(dataDir); err != nil {
		return 0, fmt.Errorf("remove an interrupted restore: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dataDir, layoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return upgradeLayout(dataDir)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", layoutFile, err)
	}
	var l layout
	if err := json.Unmarshal(data, &l); err != nil || l.Groups < 1 || l.Groups > slots.Count {
		return 0, fmt.Errorf("%s in %s is damaged (%q): it says how many raft groups this node's cluster has", layoutFile, dataDir, data)
	}
	return l.Groups, nil
}

// upgradeLayout moves the files of a single-group data directory into
// group 1's directory and records one group; it returns 0 when there is
// nothing to move. Each move is a rename, so a crash part way leaves
// files in either place, and the next start moves the rest.
func upgradeLayout(dataDir string) (int, error) {
	dest := groupDir(dataDir, 1)
	moved := false
	for _, name := range legacyFiles {
		from := filepath.Join(dataDir, name)
		if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return 0, fmt.Errorf("upgrade data directory: %w", err)
		}
		if err := os.MkdirAll(dest, 0o700); err != nil {
			return 0, fmt.Errorf("upgrade data directory: %w", err)
		}
		to := filepath.Join(dest, name)
		if _, err := os.Stat(to); err == nil {
			return 0, fmt.Errorf("upgrade data directory: both %s and %s exist; keep the one that is current and remove the other", from, to)
		}
		if err := os.Rename(from, to); err != nil {
			return 0, fmt.Errorf("upgrade data directory: %w", err)
		}
		moved = true
	}
	if !moved {
		// A crash after the last move, before the count was written,
		// leaves group 1 alone; one while a new cluster's groups were
		// made (create) leaves more, and they are made again.
		_, err1 := os.Stat(dest)
		_, err2 := os.Stat(groupDir(dataDir, 2))
		if err1 != nil || err2 == nil {
			return 0, nil
		}
	}
	if err := syncDir(dest); err != nil {
		return 0, err
	}
	if err := writeLayout(dataDir, 1); err != nil {
		return 0, err
	}
	return 1, nil
}

// writeLayout records count groups, durably.
func writeLayout(dataDir string, count int) error {
	data, err := json.Marshal(layout{Groups: count})
	if err != nil {
		return err
	}
	if err := writeFileDurably(dataDir, layoutFile, append(data, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", layoutFile, err)
	}
	return nil
}

// writeFileDurably replaces dir/name with data: written to a temporary
// file, synced, renamed over it, and the directory synced, so that after
// a crash the file is either the old one or the new one, whole.
func writeFileDurably(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
