package smalldisk

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Mount mounts a tmpfs of size (as mount's size option takes it: "24m")
// on a new directory of t's and returns that directory; it is unmounted
// when the test ends. Without root the test is skipped.
func Mount(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("HOURGLASS_REQUIRE_ROOT") == "1" {
			t.Fatal("mounting a small tmpfs needs root, and HOURGLASS_REQUIRE_ROOT=1")
		}
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs of %s: %v: %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Resize changes the size of the tmpfs Mount returned.
func Resize(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("resize the tmpfs to %s: %v: %s", size, err, out)
	}
}
