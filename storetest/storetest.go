// Package storetest is the conformance suite for [reauth.TokenStore]
// implementations: every store reauth ships runs it, and so can yours.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

// Backend is one empty store under test and access to what it holds at rest.
type Backend struct {
	// Open returns a store over the backend's data, sealing entries with
	// enc unless it is nil. Stores opened on one Backend share their data.
	Open func(enc *reauth.EntryEncryption) reauth.TokenStore
	// Raw returns every byte the backend holds for key (files, values), for
	// the test that no token is stored in clear.
	Raw func(key string) []byte
	// PutRaw stores data as key's entry around the store, as a corrupt or
	// foreign writer would.
	PutRaw func(key string, data []byte)
	// Wait lets d pass on the store's clock: advance a fake clock, or sleep
	// where the store only has the real one.
	Wait func(d time.Duration)
}

// hangGuard bounds each test: a store that blocks fails instead of hanging.
const hangGuard = 30 * time.Second

// Run runs the conformance suite: newBackend is called once per subtest
// and must return an empty backend.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		f    func(*testing.T, context.Context, Backend)
	}{
		{"MissingEntryIsMiss", testMiss},
		{"EntryRoundTrips", testRoundTrip},
		{"LateWriterLoses", testLateWriterLoses},
		{"ConcurrentSwapsOneWins", testConcurrentSwaps},
		{"InvalidateOnlyTheTokenSeen", testInvalidate},
		{"LeaseIsExclusiveUnderConcurrency", testLeaseExclusive},
		{"LeaseReleaseOnlyByHolder", testLeaseRelease},
		{"ExpiredLeaseIsTakenOver", testLeaseExpiry},
		{"CoolDownOnlyGrows", testCoolDown},
		{"CorruptEntryIsInvalid", testCorrupt},
		{"ForeignEntryIsInvalid", testForeign},
		{"EncryptedEntryHasNoTokenInClear", testEncrypted},
		{"WrongKeyIsDistinctError", testWrongKey},
		{"EntryCopiedToAnotherKeyDoesNotOpen", testSwappedEntry},
		{"CanceledContextReturns", testCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			tt.f(t, ctx, newBackend(t))
		})
	}
}

var (
	keyA = reauth.StoreKey(reauth.TokenIdentity{TokenURL: "https://idp.test/token", ClientID: "a"})
	keyB = reauth.StoreKey(reauth.TokenIdentity{TokenURL: "https://idp.test/token", ClientID: "b"})
)

func token(access, refresh string) reauth.StoredToken {
	return reauth.StoredToken{
		AccessToken: access, TokenType: "Bearer", RefreshToken: refresh,
		Expiry:  time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		Scopes:  []string{"read", "write"},
		DPoPJKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
	}
}

// sameToken compares without printing the tokens (no secret in test output).
func sameToken(t *testing.T, want, got reauth.StoredToken, what string) {
	t.Helper()
	assert.True(t, want.AccessToken == got.AccessToken, "%s: access token differs", what)
	assert.True(t, want.RefreshToken == got.RefreshToken, "%s: refresh token differs", what)
	assert.Equal(t, want.TokenType, got.TokenType, what)
	assert.True(t, want.Expiry.Equal(got.Expiry), "%s: expiry %v, want %v", what, got.Expiry, want.Expiry)
	assert.Equal(t, want.Scopes, got.Scopes, what)
	assert.Equal(t, want.DPoPJKT, got.DPoPJKT, what)
}

func testMiss(t *testing.T, ctx context.Context, b Backend) {
	_, err := b.Open(nil).Load(ctx, keyA)
	assert.ErrorIs(t, err, reauth.ErrStoreMiss)
	until, err := b.Open(nil).CoolDown(ctx, keyA)
	require.NoError(t, err)
	assert.True(t, until.IsZero(), "no cool-down stored, got %v", until)
}

func testRoundTrip(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	want := token("at-roundtrip", "rt-roundtrip")
	v, ok, err := s.CompareAndSwap(ctx, keyA, 0, want)
	require.NoError(t, err)
	require.True(t, ok)
	assert.NotZero(t, v)
	got, err := s.Load(ctx, keyA)
	require.NoError(t, err)
	sameToken(t, want, got, "loaded entry")
	assert.Equal(t, v, got.Version)
	_, err = s.Load(ctx, keyB)
	assert.ErrorIs(t, err, reauth.ErrStoreMiss, "another key holds nothing")
}

func testLateWriterLoses(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	v1, ok, err := s.CompareAndSwap(ctx, keyA, 0, token("at-1", "rt-1"))
	require.NoError(t, err)
	require.True(t, ok)
	cur, ok, err := s.CompareAndSwap(ctx, keyA, 0, token("at-x", "rt-x"))
	require.NoError(t, err)
	assert.False(t, ok, "a writer that saw no entry must not overwrite one")
	assert.Equal(t, v1, cur)
	v2, ok, err := s.CompareAndSwap(ctx, keyA, v1, token("at-2", "rt-2"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Greater(t, v2, v1)
	// A writer that read version v1 and fetched slowly comes late.
	cur, ok, err = s.CompareAndSwap(ctx, keyA, v1, token("at-late", "rt-late"))
	require.NoError(t, err)
	assert.False(t, ok, "the late writer must lose")
	assert.Equal(t, v2, cur)
	got, err := s.Load(ctx, keyA)
	require.NoError(t, err)
	sameToken(t, token("at-2", "rt-2"), got, "after the late write")
}

func testConcurrentSwaps(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	v, _, err := s.CompareAndSwap(ctx, keyA, 0, token("at-0", ""))
	require.NoError(t, err)
	const n = 32
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := b.Open(nil).CompareAndSwap(ctx, keyA, v, token("at-"+string(rune('a'+i)), ""))
			assert.NoError(t, err)
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), wins.Load(), "exactly one of the swaps from one version wins")
}

func testInvalidate(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	_, _, err := s.CompareAndSwap(ctx, keyA, 0, token("at-old", "rt-1"))
	require.NoError(t, err)
	old, err := s.Load(ctx, keyA)
	require.NoError(t, err)
	_, ok, err := s.CompareAndSwap(ctx, keyA, old.Version, token("at-new", "rt-2"))
	require.NoError(t, err)
	require.True(t, ok)
	newer, err := s.Load(ctx, keyA)
	require.NoError(t, err)

	// A late 401 for the old token must not throw the new one away.
	ok, err = reauth.InvalidateStoredToken(ctx, s, keyA, old)
	require.NoError(t, err)
	assert.False(t, ok, "invalidating a token the store no longer holds")
	got, err := s.Load(ctx, keyA)
	require.NoError(t, err)
	sameToken(t, token("at-new", "rt-2"), got, "after a late invalidation")

	ok, err = reauth.InvalidateStoredToken(ctx, s, keyA, newer)
	require.NoError(t, err)
	assert.True(t, ok, "invalidating the token the store holds")
	got, err = s.Load(ctx, keyA)
	require.NoError(t, err)
	assert.True(t, got.Invalidated(), "the access token is gone")
	assert.True(t, got.RefreshToken == "rt-2", "the refresh token stays for the next fetch")
	assert.Greater(t, got.Version, newer.Version)

	ok, err = reauth.InvalidateStoredToken(ctx, s, keyA, newer)
	require.NoError(t, err)
	assert.False(t, ok, "a second 401 for the same token changes nothing")
}

func testLeaseExclusive(t *testing.T, ctx context.Context, b Backend) {
	const n = 64
	var held atomic.Int32
	winner := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := reauth.NewLeaseHolder()
			ok, err := b.Open(nil).AcquireLease(ctx, keyA, h, time.Hour)
			assert.NoError(t, err)
			if ok {
				held.Add(1)
				winner <- h
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), held.Load(), "exactly one of %d holders gets the lease", n)
	h := <-winner
	s := b.Open(nil)
	ok, err := s.AcquireLease(ctx, keyA, h, time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "the holder may extend its lease")
	ok, err = s.AcquireLease(ctx, keyB, reauth.NewLeaseHolder(), time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "leases are per key")
}

func testLeaseRelease(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	h1, h2 := reauth.NewLeaseHolder(), reauth.NewLeaseHolder()
	ok, err := s.AcquireLease(ctx, keyA, h1, time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.ReleaseLease(ctx, keyA, h2))
	ok, err = s.AcquireLease(ctx, keyA, h2, time.Hour)
	require.NoError(t, err)
	assert.False(t, ok, "a release by another holder must not end the lease")
	require.NoError(t, s.ReleaseLease(ctx, keyA, h1))
	ok, err = s.AcquireLease(ctx, keyA, h2, time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "after the holder's release another may take the lease")
}

func testLeaseExpiry(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	dead, next := reauth.NewLeaseHolder(), reauth.NewLeaseHolder()
	const ttl = 200 * time.Millisecond
	ok, err := s.AcquireLease(ctx, keyA, dead, ttl)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AcquireLease(ctx, keyA, next, time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "the lease has not ended")
	// The holder dies without releasing: once its time is over, another
	// process takes over.
	b.Wait(ttl + 100*time.Millisecond)
	for {
		ok, err = s.AcquireLease(ctx, keyA, next, time.Hour)
		require.NoError(t, err)
		if ok {
			break
		}
		require.NoError(t, ctx.Err(), "the expired lease was never taken over")
		b.Wait(20 * time.Millisecond)
	}
	// The old holder, back from the dead, cannot release the new lease.
	require.NoError(t, s.ReleaseLease(ctx, keyA, dead))
	ok, err = s.AcquireLease(ctx, keyA, reauth.NewLeaseHolder(), time.Hour)
	require.NoError(t, err)
	assert.False(t, ok, "the new holder still has the lease")
}

func testCoolDown(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	// Far enough ahead that a store which expires cool-downs keeps these.
	t1 := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	require.NoError(t, s.SetCoolDown(ctx, keyA, t1))
	got, err := b.Open(nil).CoolDown(ctx, keyA)
	require.NoError(t, err)
	assert.True(t, got.Equal(t1), "cool-down %v, want %v", got, t1)
	require.NoError(t, s.SetCoolDown(ctx, keyA, t1.Add(-time.Minute)))
	got, err = s.CoolDown(ctx, keyA)
	require.NoError(t, err)
	assert.True(t, got.Equal(t1), "an earlier time must not shorten the cool-down, got %v", got)
	t2 := t1.Add(time.Minute)
	require.NoError(t, s.SetCoolDown(ctx, keyA, t2))
	got, err = s.CoolDown(ctx, keyA)
	require.NoError(t, err)
	assert.True(t, got.Equal(t2), "a later time extends it, got %v", got)
	got, err = s.CoolDown(ctx, keyB)
	require.NoError(t, err)
	assert.True(t, got.IsZero(), "cool-downs are per key")
}

func testCorrupt(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	good, err := reauth.EncodeStoredToken(keyA, 7, token("at-c", "rt-c"), nil)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("not an entry at all")},
		{"empty", nil},
		{"truncated", good[:len(good)-5]},
		{"bad magic", append([]byte("XAT1"), good[4:]...)},
		{"huge", bytes.Repeat([]byte("x"), 2<<20)},
	} {
		b.PutRaw(keyA, c.data)
		got, err := s.Load(ctx, keyA)
		assert.ErrorIs(t, err, reauth.ErrStoreEntryInvalid, c.name)
		assert.NotErrorIs(t, err, reauth.ErrStoreWrongKey, c.name)
		// The caller ignores it and stores a fresh token over it.
		_, ok, err := s.CompareAndSwap(ctx, keyA, got.Version, token("at-fresh", ""))
		require.NoError(t, err, c.name)
		assert.True(t, ok, "%s: a corrupt entry can be replaced from the version Load gave", c.name)
		got, err = s.Load(ctx, keyA)
		require.NoError(t, err, c.name)
		sameToken(t, token("at-fresh", ""), got, c.name)
	}
}

func testForeign(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(nil)
	other, err := reauth.EncodeStoredToken(keyB, 3, token("at-b", ""), nil)
	require.NoError(t, err)
	b.PutRaw(keyA, other)
	_, err = s.Load(ctx, keyA)
	assert.ErrorIs(t, err, reauth.ErrStoreEntryInvalid, "an entry written for another key")
}

func encryption(t *testing.T, id string, fill byte) *reauth.EntryEncryption {
	e, err := reauth.NewEntryEncryption(id, bytes.Repeat([]byte{fill}, 32))
	require.NoError(t, err)
	return e
}

func testEncrypted(t *testing.T, ctx context.Context, b Backend) {
	s := b.Open(encryption(t, "k1", 1))
	const access, refresh = "at-SECRET-4f1d2c", "rt-SECRET-99ab07"
	_, ok, err := s.CompareAndSwap(ctx, keyA, 0, token(access, refresh))
	require.NoError(t, err)
	require.True(t, ok)
	raw := b.Raw(keyA)
	require.NotEmpty(t, raw, "the backend holds the entry")
	for _, secret := range []string{access, refresh, "SECRET"} {
		assert.False(t, bytes.Contains(raw, []byte(secret)), "a token is stored in clear")
	}
	got, err := s.Load(ctx, keyA)
	require.NoError(t, err)
	sameToken(t, token(access, refresh), got, "sealed entry")

	// Without encryption the tokens are at rest in clear: the scan above
	// would have found them.
	plain := b.Open(nil)
	_, _, err = plain.CompareAndSwap(ctx, keyB, 0, token(access, refresh))
	require.NoError(t, err)
	assert.True(t, bytes.Contains(b.Raw(keyB), []byte(access)), "the scan finds a token stored in clear")
}

func testWrongKey(t *testing.T, ctx context.Context, b Backend) {
	_, _, err := b.Open(encryption(t, "k1", 1)).CompareAndSwap(ctx, keyA, 0, token("at-w", "rt-w"))
	require.NoError(t, err)
	for name, s := range map[string]reauth.TokenStore{
		"no key":              b.Open(nil),
		"another key id":      b.Open(encryption(t, "k2", 2)),
		"another key same id": b.Open(encryption(t, "k1", 2)),
	} {
		_, err := s.Load(ctx, keyA)
		assert.ErrorIs(t, err, reauth.ErrStoreWrongKey, name)
		assert.NotErrorIs(t, err, reauth.ErrStoreEntryInvalid, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "at-w", name)
		}
	}
	_, _, err = b.Open(nil).CompareAndSwap(ctx, keyB, 0, token("at-p", ""))
	require.NoError(t, err)
	_, err = b.Open(encryption(t, "k1", 1)).Load(ctx, keyB)
	assert.ErrorIs(t, err, reauth.ErrStoreWrongKey, "a plain entry where encryption is required")
}

func testSwappedEntry(t *testing.T, ctx context.Context, b Backend) {
	enc := encryption(t, "k1", 1)
	s := b.Open(enc)
	_, _, err := s.CompareAndSwap(ctx, keyA, 0, token("at-a", ""))
	require.NoError(t, err)
	sealed, err := reauth.EncodeStoredToken(keyA, 9, token("at-a", ""), enc)
	require.NoError(t, err)
	b.PutRaw(keyB, sealed)
	_, err = s.Load(ctx, keyB)
	assert.Error(t, err, "an entry sealed for key A must not open as key B's")
	assert.True(t, errors.Is(err, reauth.ErrStoreWrongKey) || errors.Is(err, reauth.ErrStoreEntryInvalid), "a store error, got %v", err)
}

func testCanceled(t *testing.T, _ context.Context, b Backend) {
	s := b.Open(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := reauth.NewLeaseHolder()
	errs := map[string]error{}
	_, errs["Load"] = s.Load(ctx, keyA)
	_, _, errs["CompareAndSwap"] = s.CompareAndSwap(ctx, keyA, 0, token("at", ""))
	_, errs["AcquireLease"] = s.AcquireLease(ctx, keyA, h, time.Second)
	errs["ReleaseLease"] = s.ReleaseLease(ctx, keyA, h)
	_, errs["CoolDown"] = s.CoolDown(ctx, keyA)
	errs["SetCoolDown"] = s.SetCoolDown(ctx, keyA, time.Now().Add(time.Hour))
	names := make([]string, 0, len(errs))
	for n := range errs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		assert.ErrorIs(t, errs[n], context.Canceled, n)
	}
	_, err := b.Open(nil).Load(context.Background(), keyA)
	assert.ErrorIs(t, err, reauth.ErrStoreMiss, "nothing was written with a canceled context")
}
