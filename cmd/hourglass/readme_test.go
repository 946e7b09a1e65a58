package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestReadmeGoProgramsCompile: every Go block of the README that is a whole
// program (it starts with "package main") builds and vets against this
// module as it stands, so a newcomer can paste it.
func TestReadmeGoProgramsCompile(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	programs := 0
	for _, block := range goBlock.FindAllSubmatch(readme, -1) {
		if !bytes.HasPrefix(block[1], []byte("package main\n")) {
			continue
		}
		programs++
		// Inside the module, so that its imports resolve to this tree.
		dir, err := os.MkdirTemp(root, "readme-example-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), block[1], 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README program %d does not build: %v\n%s\n%s", programs, err, out, block[1])
		}
	}
	if programs == 0 {
		t.Fatal("the README has no whole Go program (a block starting with package main)")
	}
}
