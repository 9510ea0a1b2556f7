package reauth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

func TestStoreKeyIsStableAndSeparatesIdentities(t *testing.T) {
	base := reauth.TokenIdentity{
		TokenURL: "https://idp.example/oauth/token", ClientID: "client-7f3a",
		Scopes: []string{"write", "read"}, Audience: "https://api.example", DPoPThumbprint: "jkt",
	}
	key := reauth.StoreKey(base)
	assert.Regexp(t, "^[0-9a-f]{64}$", key)
	assert.NotContains(t, key, "client-7f3a")

	same := base
	same.Scopes = []string{"read", "write", "read"}
	assert.Equal(t, key, reauth.StoreKey(same), "scope order and duplicates do not matter")

	for name, change := range map[string]func(*reauth.TokenIdentity){
		"token url": func(i *reauth.TokenIdentity) { i.TokenURL += "2" },
		"client":    func(i *reauth.TokenIdentity) { i.ClientID = "client-7f3b" },
		"scopes":    func(i *reauth.TokenIdentity) { i.Scopes = []string{"read"} },
		"audience":  func(i *reauth.TokenIdentity) { i.Audience = "" },
		"dpop key":  func(i *reauth.TokenIdentity) { i.DPoPThumbprint = "other" },
		// Length-prefixed fields: moving a byte across a boundary changes the key.
		"boundary": func(i *reauth.TokenIdentity) {
			i.TokenURL, i.ClientID = base.TokenURL+"c", base.ClientID[1:]
		},
	} {
		id := base
		id.Scopes = append([]string(nil), base.Scopes...)
		change(&id)
		assert.NotEqual(t, key, reauth.StoreKey(id), name)
	}
}

func TestNextStoredVersionGrowsAcrossLostEntries(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	first := reauth.NextStoredVersion(0, now)
	assert.Equal(t, uint64(now.UnixNano()), first)
	assert.Equal(t, first+1, reauth.NextStoredVersion(first, now))
	// The store lost the entry (flushed) a second later: the new first
	// version is above every version the old entry had for a billion writes.
	assert.Greater(t, reauth.NextStoredVersion(0, now.Add(time.Second)), first+1e8)
	assert.Equal(t, uint64(1), reauth.NextStoredVersion(0, time.Unix(0, 0)))
}

func TestEntryEncryptionRejectsBadKeys(t *testing.T) {
	_, err := reauth.NewEntryEncryption("k", make([]byte, 7))
	assert.ErrorContains(t, err, "must be 16, 24 or 32 bytes, got 7")
	_, err = reauth.NewEntryEncryption("", make([]byte, 32))
	assert.ErrorContains(t, err, "key id")
	e, err := reauth.NewEntryEncryption("k", make([]byte, 32))
	require.NoError(t, err)
	require.NotNil(t, e)
}

func TestDecodeStoredTokenNeverEchoesTheEntry(t *testing.T) {
	key := reauth.StoreKey(reauth.TokenIdentity{ClientID: "x"})
	data, err := reauth.EncodeStoredToken(key, 5, reauth.StoredToken{AccessToken: "at-SECRET"}, nil)
	require.NoError(t, err)
	_, err = reauth.DecodeStoredToken("other", data, nil)
	require.ErrorIs(t, err, reauth.ErrStoreEntryInvalid)
	assert.NotContains(t, err.Error(), "SECRET")
	assert.Equal(t, uint64(5), reauth.StoredVersion(data))
	assert.Zero(t, reauth.StoredVersion([]byte("junk")))
}

// A StoredToken prints without its tokens, however it is formatted.
func TestStoredTokenPrintsNoToken(t *testing.T) {
	st := reauth.StoredToken{AccessToken: "access-SENTINEL", RefreshToken: "refresh-SENTINEL", TokenType: "Bearer", Version: 7}
	for _, s := range []string{fmt.Sprint(st), fmt.Sprintf("%+v", st), fmt.Sprintf("%#v", st), fmt.Sprintf("%v", &st)} {
		assert.NotContains(t, s, "SENTINEL")
		assert.Contains(t, s, "Version: 7")
	}
}
