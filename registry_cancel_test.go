package reauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A realm fetch, once started, runs to its end on its own context: the
// request that started it may give up, but the token and the refresh token
// the realm rotated are kept. Were the answer dropped, the next fetch would
// present the spent refresh token and meet invalid_grant (DESIGN.md, Token
// fetches).
func TestRegistryCancelledFetchKeepsTheRotatedRefreshToken(t *testing.T) {
	reg := newMockRegistry(t) // the mock rotates refresh tokens
	login := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
	_, err := do(t, login, http.MethodGet, reg.URL+"/v2/team/other/manifests/v1")
	require.NoError(t, err)
	identity := reg.grant(t, 0).RefreshToken
	require.NotEmpty(t, identity)

	// No password: only the refresh token can fetch a token.
	c := registryClient(reg, RegistryWithOptions("", "", RegistryOptions{RefreshToken: identity}))
	arrived, release := make(chan struct{}), make(chan struct{})
	served := make(chan string, 1) // the refresh token the held answer rotated to
	reg.realmFault = func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		rec := httptest.NewRecorder()
		reg.mock.ServeHTTP(rec, r) // redeems identity: it is spent now
		var g realmGrant
		json.Unmarshal(rec.Body.Bytes(), &g)
		copyResponse(w, rec)
		served <- g.RefreshToken
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.URL+"/v2/team/app/manifests/v1", nil)
	require.NoError(t, err)
	gaveUp := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gaveUp <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the realm was not asked")
	}
	cancel()
	select {
	case err := <-gaveUp:
		require.ErrorIs(t, err, context.Canceled, "the cancelled request returns on its own context")
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the cancelled request still waits for the realm")
	}

	reg.realmFault = nil
	close(release)
	var rotated string
	select {
	case rotated = <-served:
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the realm did not answer")
	}
	require.NotEmpty(t, rotated)
	require.NotEqual(t, identity, rotated, "the realm rotated the refresh token")

	// The same scope: the fetch that outlived its request brought the token
	// (joined while it finishes, or held once it has).
	resp, err := do(t, c, http.MethodGet, reg.URL+"/v2/team/app/manifests/v1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	// Another scope needs a fetch of its own, with the rotated refresh token.
	resp, err = do(t, c, http.MethodGet, reg.URL+"/v2/team/other/manifests/v1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	fetches := reg.seen()
	last := fetches[len(fetches)-1]
	assert.Equal(t, "refresh_token", last.Values.Get("grant_type"))
	assert.True(t, last.Values.Get("refresh_token") == rotated, "the next fetch presents the rotated refresh token, not the spent one")
}
