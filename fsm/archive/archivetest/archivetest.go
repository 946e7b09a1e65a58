// Package archivetest helps tests damage backup archives.
package archivetest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// Damage returns a copy of the archive data with one bit flipped at the
// first place from from on (wrapping around) where the flip changes what
// the archive holds. Not every bit of a gzip stream does: its header's
// time stamp, and the code lengths of symbols a deflate block never uses,
// can change with the data staying the same, and an archive whose data is
// the same is not damaged.
func Damage(t testing.TB, data []byte, from int) []byte {
	t.Helper()
	want, err := unzip(data)
	if err != nil {
		t.Fatalf("damage an archive: it does not decompress: %v", err)
	}
	for k := range data {
		i := (from + k) % len(data)
		bad := bytes.Clone(data)
		bad[i] ^= 0x08
		if got, err := unzip(bad); err != nil || !bytes.Equal(got, want) {
			return bad
		}
	}
	t.Fatal("damage an archive: no bit flip changes it")
	return nil
}

func unzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return io.ReadAll(zr)
}
