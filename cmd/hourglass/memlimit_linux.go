package main

import "golang.org/x/sys/unix"

// limitMemory caps this process's data segment (private memory, the Go
// heap included) at bytes, where the kernel supports it.
func limitMemory(bytes uint64) {
	unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: bytes, Max: bytes})
}
