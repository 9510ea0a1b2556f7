package reauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// Registry credentials against the mock registry (/v2/) and its token realm
// (/registry/token) on plain http at 127.0.0.1, which the realm policy
// allows: the realm is on the registry's own loopback host. library/hello
// is public, alice pushes it; team/app is pulled by alice and bob and
// pushed by alice.

func registryClient(t *testing.T, srv *mockserver.Server, creds reauth.Credentials) *http.Client {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: &reauth.Transport{Base: base, Credentials: creds, Origins: []string{srv.URL()}}}
}

func listTags(t *testing.T, c *http.Client, srv *mockserver.Server, repo string) []string {
	t.Helper()
	resp, err := c.Get(srv.URL() + "/v2/" + repo + "/tags/list")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tags struct {
		Name string
		Tags []string
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tags))
	assert.Equal(t, repo, tags.Name)
	return tags.Tags
}

// startUpload is the first request of a blob push: POST
// /v2/<repo>/blobs/uploads/, which needs pull and push.
func startUpload(c *http.Client, srv *mockserver.Server, repo string) (int, error) {
	resp, err := c.Post(srv.URL()+"/v2/"+repo+"/blobs/uploads/", "application/octet-stream", strings.NewReader(""))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// tokenScopes returns the scope parameters of each logged token request.
func tokenScopes(t *testing.T, rs []mockserver.Request) []string {
	t.Helper()
	var out []string
	for _, r := range rs {
		q, err := url.ParseQuery(r.Query)
		require.NoError(t, err)
		out = append(out, strings.Join(q["scope"], " "))
	}
	return out
}

func TestMockRegistryAnonymousPull(t *testing.T) {
	srv := startMock(t)
	c := registryClient(t, srv, reauth.Registry("", ""))
	assert.Equal(t, []string{"latest", "v1"}, listTags(t, c, srv, "library/hello"))

	assert.Equal(t, []int{401, 200}, statuses(srv.RequestsTo("/v2/")))
	tok := srv.RequestsTo("/registry/token")
	require.Len(t, tok, 1)
	assert.Equal(t, http.MethodGet, tok[0].Method)
	assert.Empty(t, tok[0].Scheme, "anonymous: no credentials to the realm")
	assert.Equal(t, []string{"repository:library/hello:pull"}, tokenScopes(t, tok))
	assert.Equal(t, 1, srv.RegistryTokenGrants())
}

// A token is kept per repository and scope: the second pull is one request
// with no token fetch.
func TestMockRegistryTokenIsCachedPerScope(t *testing.T) {
	srv := startMock(t)
	c := registryClient(t, srv, reauth.Registry("bob", "builder"))
	listTags(t, c, srv, "team/app")
	require.Equal(t, 1, srv.RegistryTokenGrants())
	srv.ResetRequests()

	listTags(t, c, srv, "team/app")
	assert.Equal(t, []int{200}, statuses(srv.RequestsTo("/v2/")), "the token went up front")
	assert.Empty(t, srv.RequestsTo("/registry/token"))
	assert.Equal(t, 1, srv.RegistryTokenGrants())

	// Another repository is another scope: a fetch of its own.
	listTags(t, c, srv, "library/hello")
	assert.Equal(t, 2, srv.RegistryTokenGrants())
}

// A push after a pull asks the realm for pull and push together (the
// held actions merged with the challenge's), and the wider token then
// serves pulls too.
func TestMockRegistryPushWidensTheScope(t *testing.T) {
	srv := startMock(t)
	c := registryClient(t, srv, reauth.Registry("alice", "wonderland"))
	listTags(t, c, srv, "library/hello")
	status, err := startUpload(c, srv, "library/hello")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)
	listTags(t, c, srv, "library/hello")

	tok := srv.RequestsTo("/registry/token")
	assert.Equal(t, []string{"repository:library/hello:pull", "repository:library/hello:pull,push"}, tokenScopes(t, tok))
	for _, r := range tok {
		assert.Equal(t, "Basic", r.Scheme, "alice's password goes to the realm only")
	}
	v2 := srv.RequestsTo("/v2/")
	assert.Equal(t, []int{401, 200, 401, 202, 200}, statuses(v2))
	for _, r := range v2 {
		assert.NotEqual(t, "Basic", r.Scheme, "the registry itself gets tokens, never the password")
	}
	assert.Equal(t, 2, srv.RegistryTokenGrants())
}

// The realm grants what the user may have; a token without push meets the
// registry's refusal: 401 insufficient_scope for an anonymous client after
// the one retry, 403 DENIED for a user who may not push, with the
// registry's error kept.
func TestMockRegistryPushWithoutTheRight(t *testing.T) {
	t.Run("anonymous", func(t *testing.T) {
		srv := startMock(t)
		c := registryClient(t, srv, reauth.Registry("", ""))
		_, err := startUpload(c, srv, "library/hello")
		var ue *reauth.UnauthorizedError
		require.ErrorAs(t, err, &ue)
		assert.ErrorIs(t, err, reauth.ErrRefusedAfterRetry)
		assert.Equal(t, "insufficient_scope", ue.Bearer.Code)
		assert.Equal(t, "repository:library/hello:pull,push", ue.Bearer.Scope)
		assert.Equal(t, 2, ue.Attempts)
		assert.Equal(t, 1, srv.RegistryTokenGrants())
	})
	t.Run("bob to team/app", func(t *testing.T) {
		srv := startMock(t)
		c := registryClient(t, srv, reauth.Registry("bob", "builder"))
		_, err := startUpload(c, srv, "team/app")
		var fe *reauth.ForbiddenError
		require.ErrorAs(t, err, &fe)
		assert.ErrorIs(t, err, reauth.ErrForbidden)
		assert.Equal(t, []reauth.RegistryError{{Code: "DENIED", Message: "requested access to the resource is denied"}}, fe.RegistryErrors())
		assert.Contains(t, err.Error(), "DENIED")
		assert.NotContains(t, err.Error(), "builder")
		assert.Equal(t, []int{401, 403}, statuses(srv.RequestsTo("/v2/")))
		assert.Equal(t, 1, srv.RegistryTokenGrants())
	})
}

// With PasswordGrant the realm is asked with the OAuth2 POST; one that
// answers 405 is asked with GET, then and from then on.
func TestMockRegistryPasswordGrantFallsBackToGET(t *testing.T) {
	tests := []struct {
		name    string
		post    int      // Config.Registry.TokenPOST
		methods []string // of the token requests for two repositories
	}{
		{"POST served", 0, []string{"POST", "POST"}},
		{"POST refused with 405", http.StatusMethodNotAllowed, []string{"POST", "GET", "GET"}},
		{"POST refused with 404", http.StatusNotFound, []string{"POST", "GET", "GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t, func(c *mockserver.Config) { c.Registry.TokenPOST = tt.post })
			c := registryClient(t, srv, reauth.RegistryWithOptions("alice", "wonderland", reauth.RegistryOptions{PasswordGrant: true}))
			listTags(t, c, srv, "team/app")
			listTags(t, c, srv, "library/hello")
			var methods []string
			for _, r := range srv.RequestsTo("/registry/token") {
				methods = append(methods, r.Method)
			}
			assert.Equal(t, tt.methods, methods)
			assert.Equal(t, 2, srv.RegistryTokenGrants())
		})
	}
}

func TestMockRegistryConcurrentRequestsShareOneFetch(t *testing.T) {
	const n = 50
	srv := startMock(t)
	c := registryClient(t, srv, reauth.Registry("alice", "wonderland"))
	start := make(chan struct{})
	var wg sync.WaitGroup
	statusCodes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := c.Get(srv.URL() + "/v2/team/app/tags/list")
			if err != nil {
				statusCodes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statusCodes <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statusCodes)
	for code := range statusCodes {
		assert.Equal(t, http.StatusOK, code)
	}
	assert.Equal(t, 1, srv.RegistryTokenGrants(), "one fetch for all")
	assert.Len(t, srv.RequestsTo("/registry/token"), 1)
}
