package mockserver

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerSharesNoCodeWithReauth: the server is the oracle reauth is
// tested against, so it must not parse, digest or sign with reauth's own
// functions: a bug there would hide on both sides of every test. Only its
// tests may import reauth.
func TestServerSharesNoCodeWithReauth(t *testing.T) {
	for _, dir := range []string{".", "cmd/mockserver"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			require.NoError(t, err)
			f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
			require.NoError(t, err)
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				assert.NotEqual(t, "github.com/reauth/reauth", path, "%s imports reauth", name)
			}
		}
	}
}
