//go:build unix

package reauth

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const crashDirEnv = "REAUTH_TEST_CRASH_DIR"

// TestFileStoreCrashMidWrite kills a process that has written and synced
// its temporary file but not renamed it: the previous entry must be intact,
// and the dead writer's lock must not block the next writer.
func TestFileStoreCrashMidWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "tokens")
	s, err := NewFileStore(dir)
	require.NoError(t, err)
	key := StoreKey(TokenIdentity{ClientID: "crash"})
	v1, ok, err := s.CompareAndSwap(ctx, key, 0, StoredToken{AccessToken: "at-before", RefreshToken: "rt-before"})
	require.NoError(t, err)
	require.True(t, ok)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileStoreCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the child never reached the rename")
	require.Equal(t, "before rename", strings.TrimSpace(line))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	tmp, err := os.ReadFile(filepath.Join(dir, key+".token.tmp"))
	require.NoError(t, err, "the child died with its temporary file written")
	assert.Contains(t, string(tmp), "at-after", "the temporary file holds the write that was cut short")

	got, err := s.Load(ctx, key)
	require.NoError(t, err, "the previous entry is intact")
	assert.True(t, got.AccessToken == "at-before" && got.RefreshToken == "rt-before", "the previous tokens are intact")
	assert.Equal(t, v1, got.Version)

	_, ok, err = s.CompareAndSwap(ctx, key, v1, StoredToken{AccessToken: "at-next"})
	require.NoError(t, err, "the dead writer's lock is gone")
	assert.True(t, ok)
	got, err = s.Load(ctx, key)
	require.NoError(t, err)
	assert.True(t, got.AccessToken == "at-next")
}

// TestFileStoreCrashChild is the child of TestFileStoreCrashMidWrite: it
// does nothing unless that test started it.
func TestFileStoreCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return
	}
	s, err := NewFileStore(dir)
	require.NoError(t, err)
	key := StoreKey(TokenIdentity{ClientID: "crash"})
	cur, err := s.Load(context.Background(), key)
	require.NoError(t, err)
	fileStoreBeforeRename = func() {
		os.Stdout.WriteString("before rename\n")
		select {} // killed here
	}
	_, _, _ = s.CompareAndSwap(context.Background(), key, cur.Version, StoredToken{AccessToken: "at-after"})
}
