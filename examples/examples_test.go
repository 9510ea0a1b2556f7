// Package examples holds reauth's example programs, one per directory. This
// test-only package checks what a user who copies one of them meets.
package examples

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExamplesBuildOutsideTheModule copies each example's source files into
// a module of its own, outside this repository, that requires
// github.com/reauth/reauth (replaced by this checkout), as a user who copies
// an example would. They must build (no import of this module's internal
// packages), and each binary must print its usage for -h and exit 0, and
// exit non-zero for a flag it does not know.
func TestExamplesBuildOutsideTheModule(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to build the copies")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	dirs, err := filepath.Glob("*/main.go")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(dirs), 8, "basic, digest, dpop, keychain, oauth2, registry, retryable, tour")

	mod := t.TempDir()
	var names []string
	for _, mainFile := range dirs {
		name := filepath.Dir(mainFile)
		names = append(names, name)
		require.NoError(t, os.Mkdir(filepath.Join(mod, name), 0o755))
		sources, err := filepath.Glob(filepath.Join(name, "*.go"))
		require.NoError(t, err)
		for _, src := range sources {
			if strings.HasSuffix(src, "_test.go") {
				continue
			}
			b, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(mod, src), b, 0o644))
		}
	}
	goMod := "module example.com/copied\n\ngo 1.25.0\n\n" +
		"require github.com/reauth/reauth v0.0.0\n\n" +
		"replace github.com/reauth/reauth => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
	defer cancel()
	bin := filepath.Join(mod, "bin")
	build := exec.CommandContext(ctx, goTool, "build", "-o", bin+string(filepath.Separator), "./...")
	build.Dir = mod
	// -mod=mod lets go add the requirements the copies import (x/oauth2,
	// go-retryablehttp) from reauth's own; GOPROXY=off keeps it offline.
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the copied examples:\n%s", out)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			help := exec.CommandContext(ctx, filepath.Join(bin, name), "-h")
			out, err := help.Output()
			require.NoError(t, err, "-h must exit 0")
			assert.True(t, strings.HasPrefix(string(out), "Usage: "), "-h prints the usage first:\n%s", out)

			bad := exec.CommandContext(ctx, filepath.Join(bin, name), "-no-such-flag")
			_, err = bad.Output()
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "an unknown flag must fail: %v", err)
			assert.NotZero(t, exit.ExitCode())
		})
	}
}
