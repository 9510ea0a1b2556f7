package reauth_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// The mock server checks Digest answers with its own, independent
// implementation: these tests are the client checked against a server.

func newMock(t *testing.T, edit func(*mockserver.Config)) *mockserver.Server {
	t.Helper()
	cfg := mockserver.DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	srv := mockserver.New(cfg)
	t.Cleanup(srv.Close)
	return srv
}

func digestClient(srv *mockserver.Server, user, password string) *http.Client {
	return &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.Digest(user, password),
		Origins:     []string{srv.URL()},
	}}
}

func mustGet(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestDigestEveryAlgorithmAgainstTheMockServer(t *testing.T) {
	for _, path := range []string{
		"/digest/md5/", "/digest/md5-sess/", "/digest/sha-256/", "/digest/sha-256-sess/",
		"/digest/sha-512-256/", "/digest/sha-512-256-sess/", "/digest/userhash/",
	} {
		t.Run(path, func(t *testing.T) {
			srv := newMock(t, nil)
			c := digestClient(srv, "alice", "wonderland")
			for i := 0; i < 5; i++ {
				assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+path+"x").StatusCode)
			}
			reqs := srv.RequestsTo(path)
			require.Len(t, reqs, 6, "one challenge, then one request per call")
			assert.Equal(t, http.StatusUnauthorized, reqs[0].Status)
			for _, r := range reqs[1:] {
				assert.Equal(t, "Digest", r.Scheme)
				assert.Equal(t, http.StatusOK, r.Status)
			}
		})
	}
}

func TestDigestNonASCIIUserName(t *testing.T) {
	srv := newMock(t, nil)
	c := digestClient(srv, "Jäsøn Doe", "Secret, or not?")
	assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/sha-256/").StatusCode)
	assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/userhash/").StatusCode)
}

func TestDigestChoosesTheStrongestChallenge(t *testing.T) {
	var offered []reauth.Challenge
	srv := newMock(t, nil)
	tr := &reauth.Transport{
		Credentials: reauth.Digest("alice", "wonderland"),
		Origins:     []string{srv.URL()},
		OnEvent: func(e reauth.Event) {
			if e.Kind == reauth.EventChallenge {
				offered = e.Challenges
			}
		},
	}
	req, _ := http.NewRequest("GET", srv.URL()+"/digest/strongest/", nil)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, offered, 3, "the mock offers SHA-512-256, SHA-256 and MD5")
	reqs := srv.RequestsTo("/digest/strongest/")
	require.Len(t, reqs, 2)
	assert.Contains(t, reqs[1].Credential, "SHA-512-256")
}

func TestDigestDisallowMD5(t *testing.T) {
	srv := newMock(t, nil)
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.DigestWithOptions("alice", "wonderland", reauth.DigestOptions{DisallowMD5: true}),
		Origins:     []string{srv.URL()},
	}}
	_, err := c.Get(srv.URL() + "/digest/md5/")
	require.ErrorIs(t, err, reauth.ErrUnauthorized)
	assert.ErrorIs(t, err, reauth.ErrDigestChallenge)
	assert.ErrorIs(t, err, reauth.ErrNoCredentials)
	assert.Len(t, srv.RequestsTo("/digest/md5/"), 1, "MD5 is never answered")

	resp := mustGet(t, c, srv.URL()+"/digest/")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a stronger challenge is still answered")
}

func TestDigestWrongPasswordIsRetriedOnceWithNewCredentials(t *testing.T) {
	srv := newMock(t, nil)
	_, err := digestClient(srv, "alice", "not-the-password").Get(srv.URL() + "/digest/sha-256/")
	require.ErrorIs(t, err, reauth.ErrUnauthorized)
	reqs := srv.RequestsTo("/digest/sha-256/")
	require.Len(t, reqs, 2)
	assert.Empty(t, reqs[0].Scheme)
	assert.Equal(t, "Digest", reqs[1].Scheme)
	assert.NotContains(t, err.Error(), "not-the-password")
}

func TestDigestStaleNonceIsAnsweredWithinTheOneRetry(t *testing.T) {
	srv := newMock(t, nil) // /digest/stale/: every nonce is good for one request
	c := digestClient(srv, "alice", "wonderland")
	for i := 0; i < 4; i++ {
		assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/stale/").StatusCode)
	}
	reqs := srv.RequestsTo("/digest/stale/")
	// Call 1: challenge + answer. Calls 2-4: the nonce used up, so the
	// preemptive answer is refused as stale and the new nonce answered.
	require.Len(t, reqs, 8)
	for i := 2; i < 8; i += 2 {
		assert.Equal(t, http.StatusUnauthorized, reqs[i].Status)
		assert.Equal(t, "Digest", reqs[i].Scheme, "sent preemptively")
		assert.Equal(t, http.StatusOK, reqs[i+1].Status)
		assert.NotEqual(t, reqs[i].Credential, reqs[i+1].Credential)
	}
}

func TestDigestNonceLifetimeOnTheServersClock(t *testing.T) {
	clock := mockserver.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := newMock(t, func(c *mockserver.Config) { c.Clock = clock; c.Digest.NonceLifetime = time.Minute })
	c := digestClient(srv, "alice", "wonderland")
	mustGet(t, c, srv.URL()+"/digest/sha-256/")
	mustGet(t, c, srv.URL()+"/digest/sha-256/")
	clock.Advance(2 * time.Minute)
	assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/sha-256/").StatusCode)
	statuses := []int{}
	for _, r := range srv.RequestsTo("/digest/sha-256/") {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{401, 200, 200, 401, 200}, statuses)
}

func TestDigestAdoptsNextNonce(t *testing.T) {
	srv := newMock(t, nil)
	c := digestClient(srv, "alice", "wonderland")
	for i := 0; i < 5; i++ {
		assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/nextnonce/").StatusCode)
	}
	reqs := srv.RequestsTo("/digest/nextnonce/")
	assert.Len(t, reqs, 6, "each nextnonce is used up front: no stale round trips")
}

func TestDigestWrongRspauthFailsTheRequest(t *testing.T) {
	srv := newMock(t, nil)
	_, err := digestClient(srv, "alice", "wonderland").Get(srv.URL() + "/digest/bad-rspauth/")
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrDigestRspauth, "the server could not prove it knows the password")
}

func TestDigestAuthIntSignsTheBody(t *testing.T) {
	srv := newMock(t, nil)
	c := digestClient(srv, "alice", "wonderland")
	for _, body := range []string{"first body", "a second, different body"} {
		resp, err := c.Post(srv.URL()+"/digest/auth-int/", "text/plain", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Len(t, srv.RequestsTo("/digest/auth-int/"), 3)
}

func TestDigestConcurrentNonceCountsNeverRepeat(t *testing.T) {
	srv := newMock(t, nil) // the mock refuses any repeated nc for a nonce
	c := digestClient(srv, "alice", "wonderland")
	mustGet(t, c, srv.URL()+"/digest/sha-256/") // learn the nonce
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				resp, err := c.Get(srv.URL() + "/digest/sha-256/")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, failures)
	assert.Zero(t, srv.DigestReplays(), "requests refused for a nonce count seen before")
	// And, from the log: every (nonce, nc) pair the server saw is distinct.
	sent := map[string]bool{}
	for _, r := range srv.RequestsTo("/digest/sha-256/") {
		var nc, nonce string
		for _, f := range strings.Fields(r.Credential) {
			if v, ok := strings.CutPrefix(f, "nc="); ok {
				nc = v
			}
			if v, ok := strings.CutPrefix(f, "nonce="); ok {
				nonce = v
			}
		}
		if nc == "" {
			continue // the first request, without credentials
		}
		assert.False(t, sent[nonce+" "+nc], "nonce count %s sent twice with one nonce", nc)
		sent[nonce+" "+nc] = true
	}
	assert.Greater(t, len(sent), 16*20, "every call's nonce count was logged")
}

func TestDigestTheMostSpecificProtectionSpaceWins(t *testing.T) {
	// /digest/ declares domain="/digest/", /digest/sha-256/ its own path:
	// once both have challenged, each is answered up front with its own nonce.
	srv := newMock(t, nil)
	c := digestClient(srv, "alice", "wonderland")
	mustGet(t, c, srv.URL()+"/digest/")
	mustGet(t, c, srv.URL()+"/digest/sha-256/")
	srv.ResetRequests()
	for i := 0; i < 3; i++ {
		assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/sha-256/").StatusCode)
		assert.Equal(t, http.StatusOK, mustGet(t, c, srv.URL()+"/digest/").StatusCode)
	}
	assert.Len(t, srv.Requests(), 6, "one request per call in both spaces")
}
