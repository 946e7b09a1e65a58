// Package smalldisk gives tests a small file system to fill up: a tmpfs
// of a given size, mounted for the test and unmounted after it. Mounting
// needs root; without it the test is skipped, saying so, unless
// HOURGLASS_REQUIRE_ROOT=1 (scripts/test.sh run as root), when it fails.
package smalldisk
