package lazyfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestCutForgetsWhatWasNotSynced: after a cut, a file written, synced and
// written again holds what was synced (its size too, whether the later
// writes grew it or truncated it); one never synced is empty; one synced
// last is whole; and one renamed after writes (through its open
// descriptor) is put back under its new name.
func TestCutForgetsWhatWasNotSynced(t *testing.T) {
	l := ForTest(t)
	path := func(name string) string { return filepath.Join(l.Dir(), name) }
	write := func(f *os.File, off int64, s string) {
		t.Helper()
		if _, err := f.WriteAt([]byte(s), off); err != nil {
			t.Fatal(err)
		}
	}
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.OpenFile(path(name), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	sync := func(f *os.File) {
		t.Helper()
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}

	grown := open("grown")
	write(grown, 0, "hello world")
	sync(grown)
	write(grown, 6, "there, and more")

	cut := open("cut")
	write(cut, 0, "0123456789")
	sync(cut)
	if err := cut.Truncate(3); err != nil {
		t.Fatal(err)
	}
	write(cut, 3, "x")

	never := open("never")
	write(never, 0, "lost")

	whole := open("whole")
	write(whole, 0, "kept")
	write(whole, 4, " all")
	sync(whole)

	moved := open("moved")
	write(moved, 0, "before")
	sync(moved)
	if err := os.Rename(path("moved"), path("renamed")); err != nil {
		t.Fatal(err)
	}
	write(moved, 0, "AFTER!")

	for _, f := range []*os.File{grown, cut, never, whole, moved} {
		f.Close()
	}
	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"grown": "hello world", "cut": "0123456789", "never": "", "whole": "kept all", "renamed": "before",
	} {
		got, err := os.ReadFile(path(name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s after the cut: %q, want %q", name, got, want)
		}
	}
	if st := l.Stats(); st.ForgottenFiles != 4 {
		t.Errorf("forgot writes in %d files, want 4 (grown, cut, never, renamed): %+v", st.ForgottenFiles, st)
	}
}

// TestCutTornKeepsWholePages: after a torn cut, each page written since
// the last sync holds either what was synced or what was written, never
// anything else, and over twenty files both happen.
func TestCutTornKeepsWholePages(t *testing.T) {
	l := ForTest(t)
	const pages = 4
	synced := bytes.Repeat([]byte("a"), pages*pageSize)
	written := bytes.Repeat([]byte("b"), pages*pageSize)
	for i := range 20 {
		f, err := os.Create(filepath.Join(l.Dir(), fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(synced); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(written, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := l.CutTorn(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range 20 {
		got, err := os.ReadFile(filepath.Join(l.Dir(), fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != pages*pageSize {
			t.Fatalf("file %d is %d bytes, want %d", i, len(got), pages*pageSize)
		}
		for p := range pages {
			page := got[p*pageSize : (p+1)*pageSize]
			switch {
			case bytes.Equal(page, written[:pageSize]):
				kept++
			case bytes.Equal(page, synced[:pageSize]):
			default:
				t.Fatalf("file %d page %d holds neither what was synced nor what was written", i, p)
			}
		}
	}
	if kept == 0 || kept == 20*pages {
		t.Fatalf("%d of %d pages kept as written: not torn", kept, 20*pages)
	}
}
