package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a mounted lazy file system.
type FS struct {
	backing, dir string

	mu     sync.Mutex
	server *fuse.Server
	files  map[uint64]*fileLog // by the backing file's inode
	stats  Stats
}

// Stats counts what an FS saw since Mount (across cuts).
type Stats struct {
	// Writes and Syncs count the changes recorded and the fsyncs.
	Writes, Syncs int
	// Forgotten counts the changes the last Cut undid, in files.
	Forgotten, ForgottenFiles int
}

// fileLog is what was written to one backing file since its last fsync:
// each change with what it replaced, oldest first.
type fileLog struct {
	f    *os.File // the backing file, to read and put back
	undo []change
}

// change is one write of n bytes at off (n < 0: a change of size to
// off) and what it replaced: the file's size before it, and the bytes it
// overwrote within that size.
type change struct {
	off, n int64
	old    []byte
	size   int64
}

// Mount passes dir through to backing, which must exist.
func Mount(backing, dir string) (*FS, error) {
	l := &FS{backing: backing, dir: dir, files: map[uint64]*fileLog{}}
	if err := l.mount(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *FS) mount() error {
	root, err := fs.NewLoopbackRoot(l.backing)
	if err != nil {
		return fmt.Errorf("lazyfs: loopback root %s: %w", l.backing, err)
	}
	lb := root.(*fs.LoopbackNode)
	top := &node{LoopbackNode: lb, fs: l}
	lb.RootData.RootNode = top
	sec := time.Second
	server, err := fs.Mount(l.dir, top, &fs.Options{
		EntryTimeout: &sec, AttrTimeout: &sec,
		MountOptions: fuse.MountOptions{FsName: "lazyfs", Name: "lazyfs", DirectMount: true},
	})
	if err != nil {
		return fmt.Errorf("lazyfs: mount %s on %s: %w", l.backing, l.dir, err)
	}
	l.server = server
	return nil
}

// Unmount unmounts the file system; what was written stays written.
func (l *FS) Unmount() error {
	if l.server == nil {
		return nil
	}
	err := l.server.Unmount()
	l.server = nil
	return err
}

// Cut is a power cut: it unmounts the file system (whatever still has
// files open on it should be gone: kill it first), puts back in every
// file what was written since the file was last synced, and mounts it
// again, as the machine coming back would find it.
func (l *FS) Cut() error { return l.cut(func() bool { return false }) }

// CutTorn is a power cut after which each page (4 KiB) written since its
// file was last synced holds, at random, what was written or what was
// synced, and each such file the size it has or the size it had: the
// kernel writes dirty pages back in any order, whenever it likes, so an
// unsynced file can come back torn.
func (l *FS) CutTorn(rng *rand.Rand) error { return l.cut(func() bool { return rng.IntN(2) == 0 }) }

// pageSize is the unit in which CutTorn keeps or forgets writes.
const pageSize = 4096

func (l *FS) cut(keep func() bool) error {
	if err := l.Unmount(); err != nil {
		return fmt.Errorf("lazyfs: unmount: %w", err)
	}
	l.mu.Lock()
	l.stats.Forgotten, l.stats.ForgottenFiles = 0, 0
	var errs []error
	for ino, fl := range l.files {
		if len(fl.undo) > 0 {
			l.stats.ForgottenFiles++
			l.stats.Forgotten += len(fl.undo)
			if err := fl.putBack(keep); err != nil {
				errs = append(errs, err)
			}
		}
		fl.f.Close()
		delete(l.files, ino)
	}
	l.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lazyfs: put back unsynced writes: %w", err)
	}
	return l.mount()
}

// putBack undoes the file's unsynced changes, but for the pages keep
// says to keep as written (and its size, if keep says so).
func (fl *fileLog) putBack(keep func() bool) error {
	info, err := fl.f.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	// The pages changed since the last sync, and what they hold now.
	touched := map[int64][]byte{}
	for _, c := range fl.undo {
		end := c.off + c.n
		if c.n < 0 {
			end = c.size
		}
		for p := c.off / pageSize; p*pageSize < end; p++ {
			touched[p] = nil
		}
	}
	for p := range touched {
		if p*pageSize >= size {
			continue
		}
		page := make([]byte, min(pageSize, size-p*pageSize))
		if _, err := fl.f.ReadAt(page, p*pageSize); err != nil {
			return err
		}
		touched[p] = page
	}
	for i := len(fl.undo) - 1; i >= 0; i-- {
		c := fl.undo[i]
		if err := fl.f.Truncate(c.size); err != nil {
			return err
		}
		if _, err := fl.f.WriteAt(c.old, c.off); err != nil {
			return err
		}
	}
	if keep() {
		if err := fl.f.Truncate(size); err != nil {
			return err
		}
	} else {
		size = fl.undo[0].size
	}
	for p, page := range touched {
		if page == nil || !keep() || p*pageSize >= size {
			continue
		}
		if _, err := fl.f.WriteAt(page[:min(int64(len(page)), size-p*pageSize)], p*pageSize); err != nil {
			return err
		}
	}
	return nil
}

// Stats is what the file system saw.
func (l *FS) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// logOf is the log of the backing file at path (a name, or an open
// descriptor's /proc/self/fd link), opened on first use. Call with l.mu
// held.
func (l *FS) logOf(path string) (*fileLog, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, err
	}
	if fl := l.files[st.Ino]; fl != nil {
		return fl, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fl := &fileLog{f: f}
	l.files[st.Ino] = fl
	return fl, nil
}

// save records, before a change to path's bytes [off, off+n) (n < 0: to
// its end, for a truncation), what the change will replace.
func (l *FS) save(path string, off, n int64) syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	fl, err := l.logOf(path)
	if err != nil {
		return fs.ToErrno(err)
	}
	info, err := fl.f.Stat()
	if err != nil {
		return fs.ToErrno(err)
	}
	size := info.Size()
	end := size
	if n >= 0 {
		end = min(off+n, size)
	}
	var old []byte
	if end > off {
		old = make([]byte, end-off)
		if _, err := fl.f.ReadAt(old, off); err != nil {
			return fs.ToErrno(err)
		}
	}
	fl.undo = append(fl.undo, change{off: off, n: n, old: old, size: size})
	l.stats.Writes++
	return 0
}

// synced forgets path's log: what it holds is on disk now.
func (l *FS) synced(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Syncs++
	if fl, err := l.logOf(path); err == nil {
		fl.undo = nil
	}
}

// node is a loopback node that records, before each change to a file's
// contents or size, what it replaces.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

func (n *node) backingPath() string {
	return filepath.Join(n.fs.backing, n.Path(n.Root()))
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := n.backingPath()
	if flags&syscall.O_TRUNC != 0 {
		if errno := n.fs.save(path, 0, -1); errno != 0 {
			return nil, 0, errno
		}
	}
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return newFile(fh, n.fs), fuseFlags, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	path := filepath.Join(n.backingPath(), name)
	if flags&syscall.O_TRUNC != 0 {
		if _, err := os.Lstat(path); err == nil {
			if errno := n.fs.save(path, 0, -1); errno != 0 {
				return nil, nil, 0, errno
			}
		}
	}
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, newFile(fh, n.fs), fuseFlags, 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if errno := n.fs.save(n.backingPath(), int64(size), -1); errno != 0 {
			return errno
		}
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// CopyFileRange is refused, so that a copy goes through Write.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// file is an open file: the loopback file, and a path to its backing
// file that holds whatever it is renamed to (its descriptor's in
// /proc/self/fd). It does not offer the kernel the backing file
// descriptor (FUSE passthrough), which would bypass Write.
type file struct {
	lf   *fs.LoopbackFile
	path string
	fs   *FS
}

func newFile(fh fs.FileHandle, l *FS) *file {
	lf := fh.(*fs.LoopbackFile)
	fd, _ := lf.PassthroughFd()
	return &file{lf: lf, path: "/proc/self/fd/" + strconv.Itoa(fd), fs: l}
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileWritever  = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
	_ fs.FileGetlker   = (*file)(nil)
	_ fs.FileSetlker   = (*file)(nil)
	_ fs.FileSetlkwer  = (*file)(nil)
)

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(ctx, dest, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.fs.save(f.path, off, int64(len(data))); errno != 0 {
		return 0, errno
	}
	return f.lf.Write(ctx, data, off)
}

func (f *file) Writev(ctx context.Context, iov [][]byte, off int64) (uint32, syscall.Errno) {
	var data []byte
	for _, b := range iov {
		data = append(data, b...)
	}
	return f.Write(ctx, data, off)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.lf.Fsync(ctx, flags); errno != 0 {
		return errno
	}
	f.fs.synced(f.path)
	return 0
}

func (f *file) Flush(ctx context.Context) syscall.Errno   { return f.lf.Flush(ctx) }
func (f *file) Release(ctx context.Context) syscall.Errno { return f.lf.Release(ctx) }

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

// Setattr's size change was saved by the node, which calls it.
func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Setattr(ctx, in, out)
}

func (f *file) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if errno := f.fs.save(f.path, int64(off), int64(size)); errno != 0 {
		return errno
	}
	return f.lf.Allocate(ctx, off, size, mode)
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

func (f *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return f.lf.Getlk(ctx, owner, lk, flags, out)
}

func (f *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.lf.Setlk(ctx, owner, lk, flags)
}

func (f *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return f.lf.Setlkw(ctx, owner, lk, flags)
}
