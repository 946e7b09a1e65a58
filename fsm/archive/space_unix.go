//go:build unix

package archive

import "golang.org/x/sys/unix"

// freeBytes is the space available to an unprivileged user in dir's file
// system (ok false when it cannot be told).
func freeBytes(dir string) (free int64, ok bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
