// Package smalldisk gives tests a small file system to fill up: a tmpfs
// of a given size, mounted for the test and unmounted after it. Mounting
// needs root; without it the test is skipped, saying so.
package smalldisk
