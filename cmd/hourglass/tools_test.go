package main

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an outside program a test drives
// (prometheus, chromium). Where it is missing the test is skipped, saying
// why, unless HOURGLASS_REQUIRE_TOOLS=1 (as scripts/test.sh sets after
// installing them): then it fails.
func requireTool(t *testing.T, names ...string) string {
	t.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("HOURGLASS_REQUIRE_TOOLS") == "1" {
		t.Fatalf("none of %v is installed, and HOURGLASS_REQUIRE_TOOLS=1", names)
	}
	t.Skipf("skipped: none of %v is installed (scripts/test.sh installs it)", names)
	return ""
}
