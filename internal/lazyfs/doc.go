// Package lazyfs is a FUSE file system for tests of what survives a power
// cut (after LazyFS, the file system Jepsen and etcd's robustness tests
// use for the same purpose). It passes every operation through to a
// directory and remembers, for each file, what each write since the
// file's last fsync replaced; Cut puts all of that back, leaving each
// file as it was when last synced, as a machine that lost power would.
//
// Only file contents and sizes are forgotten: names (a file created,
// renamed or removed) are kept as they were when the power went. So a
// file created and written but never synced comes back empty, as it may
// after a real power cut. Mounting needs root and /dev/fuse.
package lazyfs
