//go:build unix

package reauth_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

func TestFileStoreModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "tokens")
	s, err := reauth.NewFileStore(dir)
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the directory is private")
	key := reauth.StoreKey(reauth.TokenIdentity{ClientID: "c"})
	ctx := context.Background()
	_, _, err = s.CompareAndSwap(ctx, key, 0, reauth.StoredToken{AccessToken: "at"})
	require.NoError(t, err)
	_, err = s.AcquireLease(ctx, key, reauth.NewLeaseHolder(), time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.SetCoolDown(ctx, key, time.Now().Add(time.Minute)))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}

	require.NoError(t, os.Chmod(dir, 0o755))
	_, err = reauth.NewFileStore(dir)
	require.Error(t, err, "a directory others can read is refused")
	assert.Contains(t, err.Error(), "chmod 700")
}
