package lazyfs

import (
	"os"
	"path/filepath"
	"testing"
)

// ForTest mounts a lazy file system over a new directory of t's, and
// returns it; it is unmounted when the test ends. Without root or
// /dev/fuse the test is skipped, saying why, unless
// HOURGLASS_REQUIRE_ROOT=1 (scripts/test.sh sets it when it runs as
// root, as CI does), when it fails.
func ForTest(t *testing.T) *FS {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "mounting a FUSE file system needs root"
	} else if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse: " + err.Error()
	}
	if why != "" {
		if os.Getenv("HOURGLASS_REQUIRE_ROOT") == "1" {
			t.Fatalf("%s, and HOURGLASS_REQUIRE_ROOT=1", why)
		}
		t.Skip(why)
	}
	base := t.TempDir()
	backing, dir := filepath.Join(base, "backing"), filepath.Join(base, "mnt")
	for _, d := range []string{backing, dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Mount(backing, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return l
}

// Dir is where the file system is mounted.
func (l *FS) Dir() string { return l.dir }

// Backing is the directory the file system passes through to.
func (l *FS) Backing() string { return l.backing }
