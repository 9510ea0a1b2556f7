package reauth

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A citation of the design reads "DESIGN.md, invariant 2", "DESIGN.md,
// invariants 1–3" or "DESIGN.md, <heading>" ("DESIGN.md, status table").
var (
	citation = regexp.MustCompile(`DESIGN\.md, (?:invariants? (\d+)(?:\s*(?:–|-|and)\s*(\d+))?|([A-Za-z][^).;:,]*))`)
	// Older forms that named no heading.
	staleCitation = regexp.MustCompile(`DESIGN(?:\.md)?(?:'s| invariant)|invariants? \d+ of DESIGN`)
	// A comment or text line break, so that a citation may span two lines.
	lineBreak = regexp.MustCompile(`\s*\n\s*(?://\s*)?`)
)

// TestDesignCitationsResolve: every citation of DESIGN.md in the repository's
// Go and Markdown files names an invariant or a section that DESIGN.md has a
// heading for, so a reader can follow it.
func TestDesignCitationsResolve(t *testing.T) {
	design, err := os.ReadFile("DESIGN.md")
	require.NoError(t, err, "the code cites DESIGN.md; it must exist")
	invariants := map[int]bool{}
	var headings []string
	for _, line := range strings.Split(string(design), "\n") {
		if m := regexp.MustCompile(`^### Invariant (\d+): `).FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			invariants[n] = true
		}
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "##") {
			headings = append(headings, strings.ToLower(h))
		}
	}
	require.NotEmpty(t, invariants)

	cited := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		ext := filepath.Ext(path)
		if d.IsDir() || (ext != ".go" && ext != ".md") || path == "DESIGN.md" || path == "design_test.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := lineBreak.ReplaceAllString(string(b), " ")
		for _, stale := range staleCitation.FindAllString(text, -1) {
			t.Errorf("%s: %q: cite as \"DESIGN.md, invariant N\" or \"DESIGN.md, <section>\"", path, stale)
		}
		for _, m := range citation.FindAllStringSubmatch(text, -1) {
			cited++
			if m[1] != "" {
				from, _ := strconv.Atoi(m[1])
				to := from
				if m[2] != "" {
					to, _ = strconv.Atoi(m[2])
				}
				for n := from; n <= to; n++ {
					assert.True(t, invariants[n], "%s: %q: DESIGN.md has no heading \"### Invariant %d: …\"", path, m[0], n)
				}
				continue
			}
			section := strings.ToLower(strings.TrimSpace(m[3]))
			found := false
			for _, h := range headings {
				found = found || strings.HasPrefix(section, h)
			}
			assert.True(t, found, "%s: %q: DESIGN.md has no heading %q", path, m[0], m[3])
		}
		return nil
	})
	require.NoError(t, err)
	assert.Positive(t, cited, "the scan found no citation at all")
}
