package reauth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/storetest"
)

// fakeClock is the FileStore clock the conformance suite advances.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func fileBackend(t *testing.T) storetest.Backend {
	dir := filepath.Join(t.TempDir(), "tokens")
	clock := &fakeClock{now: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)}
	return storetest.Backend{
		Open: func(enc *reauth.EntryEncryption) reauth.TokenStore {
			s, err := reauth.NewFileStore(dir)
			require.NoError(t, err)
			s.Encryption, s.Now = enc, clock.Now
			return s
		},
		Raw: func(key string) []byte {
			var all []byte
			names, err := filepath.Glob(filepath.Join(dir, key+"*"))
			require.NoError(t, err)
			for _, n := range names {
				b, err := os.ReadFile(n)
				require.NoError(t, err)
				all = append(all, b...)
			}
			return all
		},
		PutRaw: func(key string, data []byte) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, key+".token"), data, 0o600))
		},
		Wait: clock.Advance,
	}
}

func TestFileStoreConformance(t *testing.T) {
	storetest.Run(t, fileBackend)
}

func TestFileStoreRejectsBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := reauth.NewFileStore(file)
	assert.ErrorContains(t, err, "not a directory")
	_, err = reauth.NewFileStore("")
	assert.ErrorContains(t, err, "path is empty")

	s, err := reauth.NewFileStore(t.TempDir() + "/s")
	require.NoError(t, err)
	ctx := context.Background()
	for _, key := range []string{"", "../escape", "a/b", strings.Repeat("k", 129)} {
		_, err := s.Load(ctx, key)
		assert.ErrorContains(t, err, "invalid key", "%q", key)
		_, _, err = s.CompareAndSwap(ctx, key, 0, reauth.StoredToken{})
		assert.ErrorContains(t, err, "invalid key", "%q", key)
	}
	key := reauth.StoreKey(reauth.TokenIdentity{})
	_, err = s.AcquireLease(ctx, key, "", time.Second)
	assert.ErrorContains(t, err, "lease holder")
	_, err = s.AcquireLease(ctx, key, "h", 0)
	assert.ErrorContains(t, err, "ttl must be positive")
	assert.Equal(t, 1, strings.Count(err.Error(), "reauth: "))
}
