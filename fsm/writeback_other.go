//go:build !linux

package fsm

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(string) {}
