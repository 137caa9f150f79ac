package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every flow docs/pipeline.md shows is one the compiler really produces for
// pipelines/testdata/small.yaml (a golden line, cookie aside), so the
// document cannot drift from the code.
func TestDocsShowCompiledFlows(t *testing.T) {
	golden := map[string]bool{}
	files, _ := filepath.Glob("testdata/golden/*/*.txt")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if _, rest, ok := strings.Cut(l, ", "); ok {
				golden[rest] = true
			}
		}
	}
	doc, err := os.ReadFile("../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(l, "table=") {
			continue
		}
		l, _, _ = strings.Cut(l, "  # ")
		n++
		if !golden[l] {
			t.Errorf("docs/pipeline.md shows a flow the compiler does not produce for small.yaml:\n%s", l)
		}
	}
	if n < 20 {
		t.Fatalf("only %d flows found in docs/pipeline.md", n)
	}
}
