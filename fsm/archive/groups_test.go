package archive

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/archive/archivetest"
)

// groupsArchive is an archive of two groups, each holding newState's
// tasks.
func groupsArchive(t *testing.T) ([]byte, Meta) {
	t.Helper()
	var sources []*GroupSource
	for range 2 {
		data, _, _ := writeArchive(t, newState(t), nil)
		src, err := OpenGroup(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
	}
	meta := GroupsMeta(sources, "test", "n1", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	if err := WriteGroups(&buf, meta, sources); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), meta
}

func TestArchiveOfManyGroups(t *testing.T) {
	data, meta := groupsArchive(t)
	if len(meta.Groups) != 2 || meta.Tasks.Total() != 8 || meta.Schedules != 2 || meta.Groups[1].Schedules != 1 || meta.StateSize != meta.Groups[0].StateSize+meta.Groups[1].StateSize {
		t.Fatalf("meta %+v", meta)
	}
	dir := t.TempDir()
	got, err := ExtractGroups(bytes.NewReader(data), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.FormatVersion != GroupsFormatVersion || len(got.Groups) != 2 || got.Groups[1].Index != meta.Groups[1].Index {
		t.Fatalf("extracted meta %+v", got)
	}
	for _, g := range got.Groups {
		st, err := os.Stat(GroupStatePath(dir, g.ID))
		if err != nil || st.Size() != g.StateSize {
			t.Fatalf("group %d's state: %v %v", g.ID, st, err)
		}
	}
	// An archive of one group reads as group 1.
	single, _, _ := writeArchive(t, newState(t), nil)
	got, err = ExtractGroups(bytes.NewReader(single), t.TempDir(), nil)
	if err != nil || got.FormatVersion != FormatVersion || len(got.Groups) != 1 || got.Groups[0].ID != 1 || got.Groups[0].Tasks.Total() != 4 {
		t.Fatalf("an archive of one group: %+v %v", got, err)
	}
	// Read, which restores one group, refuses one of many, saying so.
	if _, err := Read(bytes.NewReader(data), &bytes.Buffer{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cluster of 2 groups") {
		t.Fatalf("Read of an archive of many groups: %v", err)
	}
}

// A damaged byte in the last group's state is found, and nothing is left
// behind.
func TestDamagedArchiveOfManyGroupsIsRefused(t *testing.T) {
	data, _ := groupsArchive(t)
	for _, at := range []int{len(data) / 2, len(data) - 30} {
		bad := archivetest.Damage(t, data, at)
		dir := t.TempDir()
		if _, err := ExtractGroups(bytes.NewReader(bad), dir, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a byte flipped at %d of %d: %v", at, len(data), err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
			t.Fatalf("a refused archive left %v", left)
		}
	}
}
