package archive

import (
	"encoding/binary"
	"hash/fnv"
)

// The first page of a bbolt file is a meta page: a 16-byte page header,
// then magic, version, page size, flags, the root bucket (16 bytes), the
// freelist's page, the high-water page id, the txid and an FNV-64a checksum
// of what precedes it (little-endian, as bbolt writes it on the platforms
// it runs on). A backup's state file is written whole by a bbolt
// transaction (Tx.WriteTo), so its first meta page is always valid.
const (
	boltPageHeader = 16
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltMetaSum    = 56 // bytes of the meta covered by its checksum
	boltMetaSize   = boltMetaSum + 8
)

// stateHead checks the start of a state file as it streams in, so that an
// archive whose state is not a bbolt file, or declares more pages than its
// size holds (which would make bbolt read past the end of its memory map),
// is refused at its first bytes, before the rest is written.
type stateHead struct {
	size int64 // the state's declared size
	buf  []byte
	done bool
}

func (h *stateHead) Write(p []byte) (int, error) {
	if h.done {
		return len(p), nil
	}
	need := boltPageHeader + boltMetaSize
	h.buf = append(h.buf, p[:min(len(p), need-len(h.buf))]...)
	if len(h.buf) < need && int64(len(h.buf)) < h.size {
		return len(p), nil
	}
	h.done = true
	return len(p), h.check()
}

func (h *stateHead) check() error {
	if len(h.buf) < boltPageHeader+boltMetaSize {
		return invalid("%s: %d bytes, too short to be a state file", stateName, len(h.buf))
	}
	m := h.buf[boltPageHeader:]
	le := binary.LittleEndian
	sum := fnv.New64a()
	sum.Write(m[:boltMetaSum])
	switch {
	case le.Uint32(m[0:]) != boltMagic:
		return invalid("%s is not a state file (no bbolt meta page at its start)", stateName)
	case le.Uint32(m[4:]) != boltVersion:
		return invalid("%s: bbolt file version %d, want %d", stateName, le.Uint32(m[4:]), boltVersion)
	case le.Uint64(m[boltMetaSum:]) != sum.Sum64():
		return invalid("%s: its meta page fails its checksum: the file is damaged", stateName)
	}
	pageSize := int64(le.Uint32(m[8:]))
	pages := int64(le.Uint64(m[40:]))
	if pageSize < 512 || pageSize > 1<<20 || pageSize&(pageSize-1) != 0 {
		return invalid("%s: page size %d", stateName, pageSize)
	}
	if pages < 2 || pages > h.size/pageSize {
		return invalid("%s: its meta page counts %d pages of %d bytes, more than its %d bytes hold", stateName, pages, pageSize, h.size)
	}
	return nil
}
