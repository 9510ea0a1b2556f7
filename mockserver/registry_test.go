package mockserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registryToken follows a registry challenge to the token realm, as a
// client would, and returns the token.
func registryToken(t *testing.T, srv *Server, ch reauth.Challenge, authorization string) string {
	t.Helper()
	q := url.Values{"service": {ch.Param("service")}}
	if sc := ch.Param("scope"); sc != "" {
		q.Set("scope", sc)
	}
	r := get(t, ch.Param("realm")+"?"+q.Encode(), authorization)
	require.Equal(t, http.StatusOK, r.status, r.body)
	m := r.json(t)
	require.Equal(t, m["token"], m["access_token"])
	assert.Equal(t, float64(300), m["expires_in"])
	assert.Equal(t, srv.Clock().Now().UTC().Format(time.RFC3339), m["issued_at"])
	return m["access_token"].(string)
}

func TestRegistryChallengeNamesTheTokenRealm(t *testing.T) {
	srv, _ := newTestServer(t)
	r := get(t, srv.URL()+"/v2/team/app/tags/list", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, `Bearer realm="`+srv.URL()+`/registry/token",service="registry.reauth.mock",scope="repository:team/app:pull"`,
		r.header.Get("WWW-Authenticate"))
	assert.Equal(t, "registry/2.0", r.header.Get("Docker-Distribution-API-Version"))
	assert.Equal(t, "UNAUTHORIZED", r.json(t)["errors"].([]any)[0].(map[string]any)["code"])

	push := send(t, http.MethodPut, srv.URL()+"/v2/team/app/manifests/v2", "", nil, "{}")
	assert.Contains(t, push.header.Get("WWW-Authenticate"), `scope="repository:team/app:pull,push"`)

	base := get(t, srv.URL()+"/v2/", "")
	assert.Equal(t, `Bearer realm="`+srv.URL()+`/registry/token",service="registry.reauth.mock"`, base.header.Get("WWW-Authenticate"))
}

func TestRegistryFlows(t *testing.T) {
	tests := []struct {
		name, method, path, auth string
		status                   int
		errorCode                string // registry error code, or the challenge's error
	}{
		{"anonymous pull of a public repository", "GET", "/v2/library/hello/tags/list", "", 200, ""},
		{"anonymous base check", "GET", "/v2/", "", 200, ""},
		{"anonymous pull of a private repository", "GET", "/v2/team/app/tags/list", "", 401, "insufficient_scope"},
		{"anonymous push", "PUT", "/v2/library/hello/manifests/v1", "", 401, "insufficient_scope"},
		{"bob pulls", "GET", "/v2/team/app/tags/list", basic("bob", "builder"), 200, ""},
		{"bob gets a manifest", "GET", "/v2/team/app/manifests/latest", basic("bob", "builder"), 200, ""},
		{"bob may not push", "PUT", "/v2/team/app/manifests/v1", basic("bob", "builder"), 403, "DENIED"},
		{"bob may not pull an unknown repository", "GET", "/v2/nope/tags/list", basic("bob", "builder"), 403, "DENIED"},
		{"alice pushes a manifest", "PUT", "/v2/team/app/manifests/v1", basic("alice", "wonderland"), 201, ""},
		{"alice starts an upload", "POST", "/v2/library/hello/blobs/uploads/", basic("alice", "wonderland"), 202, ""},
		{"any user pulls library/hello", "GET", "/v2/library/hello/tags/list", basic("Jäsøn Doe", "Secret, or not?"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t)
			first := send(t, tt.method, srv.URL()+tt.path, "", nil, "{}")
			require.Equal(t, http.StatusUnauthorized, first.status)
			chs := challenges(t, first)
			require.Len(t, chs, 1)
			tok := registryToken(t, srv, chs[0], tt.auth)
			r := send(t, tt.method, srv.URL()+tt.path, bearer(tok), nil, "{}")
			assert.Equal(t, tt.status, r.status, r.body)
			switch tt.status {
			case http.StatusForbidden:
				assert.JSONEq(t, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, r.body)
			case http.StatusUnauthorized:
				assert.Equal(t, tt.errorCode, challenges(t, r)[0].Param("error"))
			}
		})
	}
}

func TestRegistryAsksForMoreScopeWhenTheUserMayHaveIt(t *testing.T) {
	srv, _ := newTestServer(t)
	ch := reauth.Challenge{Scheme: "Bearer", Params: map[string]string{
		"realm": srv.URL() + "/registry/token", "service": "registry.reauth.mock", "scope": "repository:team/app:pull",
	}}
	pullOnly := registryToken(t, srv, ch, basic("alice", "wonderland"))
	require.Equal(t, http.StatusOK, get(t, srv.URL()+"/v2/team/app/tags/list", bearer(pullOnly)).status)

	r := send(t, http.MethodPut, srv.URL()+"/v2/team/app/manifests/v1", bearer(pullOnly), nil, "{}")
	require.Equal(t, http.StatusUnauthorized, r.status, "alice may push: the token lacks the scope, so ask for it")
	again := challenges(t, r)[0]
	assert.Equal(t, "insufficient_scope", again.Param("error"))
	assert.Equal(t, "repository:team/app:pull,push", again.Param("scope"))
	delete(again.Params, "error")
	pushToken := registryToken(t, srv, again, basic("alice", "wonderland"))
	assert.Equal(t, http.StatusCreated, send(t, http.MethodPut, srv.URL()+"/v2/team/app/manifests/v1", bearer(pushToken), nil, "{}").status)
}

func TestRegistryTokensAreNotOAuth2Tokens(t *testing.T) {
	srv, _ := newTestServer(t)
	ch := reauth.Challenge{Params: map[string]string{"realm": srv.URL() + "/registry/token", "scope": "repository:library/hello:pull"}}
	reg := registryToken(t, srv, ch, "")
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/oauth2/resource", bearer(reg)).status)
	r := get(t, srv.URL()+"/v2/library/hello/tags/list", bearer("mock-token-admin"))
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, "invalid_token", challenges(t, r)[0].Param("error"))
}

func TestRegistryTokensExpireAndRevoke(t *testing.T) {
	srv, clock := newTestServer(t)
	ch := reauth.Challenge{Params: map[string]string{"realm": srv.URL() + "/registry/token", "scope": "repository:team/app:pull"}}
	tok := registryToken(t, srv, ch, basic("bob", "builder"))
	clock.Advance(5 * time.Minute)
	r := get(t, srv.URL()+"/v2/team/app/tags/list", bearer(tok))
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, "invalid_token", challenges(t, r)[0].Param("error"))

	tok = registryToken(t, srv, ch, basic("bob", "builder"))
	require.True(t, srv.RevokeAccessToken(tok))
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/v2/team/app/tags/list", bearer(tok)).status)
	assert.Equal(t, 2, srv.RegistryTokenGrants())
}

func TestRegistryTokenEndpointErrors(t *testing.T) {
	srv, _ := newTestServer(t)
	realm := srv.URL() + "/registry/token"
	for _, tt := range []struct {
		name, query, auth string
		status            int
	}{
		{"wrong password", "scope=repository:team/app:pull", basic("bob", "nope"), 401},
		{"Bearer instead of Basic", "scope=repository:team/app:pull", bearer("x"), 401},
		{"malformed Basic", "scope=repository:team/app:pull", "Basic !!!", 400},
		{"unknown service", "service=other&scope=repository:team/app:pull", "", 400},
		{"malformed scope", "scope=repository:team/app", "", 400},
		{"malformed scope, empty actions", "scope=repository:team/app:", "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, realm+"?"+tt.query, tt.auth)
			assert.Equal(t, tt.status, r.status, r.body)
			if tt.status == http.StatusUnauthorized {
				assert.Equal(t, `Basic realm="registry@reauth.mock", charset="UTF-8"`, r.header.Get("WWW-Authenticate"))
			}
			assert.NotEmpty(t, r.json(t)["errors"])
		})
	}
	assert.Equal(t, 0, srv.RegistryTokenGrants())
}

func TestRegistryTokenGrantsOnlyWhatIsAllowed(t *testing.T) {
	srv, _ := newTestServer(t)
	r := get(t, srv.URL()+"/registry/token?scope=repository:team/app:pull,push&scope=repository:library/hello:pull+registry:catalog:*", basic("bob", "builder"))
	require.Equal(t, http.StatusOK, r.status)
	tok := r.json(t)["token"].(string)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/v2/team/app/tags/list", bearer(tok)).status)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/v2/library/hello/tags/list", bearer(tok)).status)
	assert.Equal(t, http.StatusForbidden, send(t, http.MethodPut, srv.URL()+"/v2/team/app/manifests/x", bearer(tok), nil, "").status)
}

func TestRegistryTokenPOST(t *testing.T) {
	srv, _ := newTestServer(t)
	realm := srv.URL() + "/registry/token"
	r := postForm(t, realm, "", url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "service": {"registry.reauth.mock"},
		"scope": {"repository:team/app:pull,push"}, "client_id": {"reauth"}, "access_type": {"offline"},
	})
	require.Equal(t, http.StatusOK, r.status, r.body)
	m := r.json(t)
	assert.Equal(t, "repository:team/app:pull,push", m["scope"])
	rt := m["refresh_token"].(string)
	assert.Equal(t, http.StatusCreated, send(t, http.MethodPut, srv.URL()+"/v2/team/app/manifests/x", bearer(m["access_token"].(string)), nil, "").status)

	r = postForm(t, realm, "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"reauth"},
		"service": {"registry.reauth.mock"}, "scope": {"repository:team/app:pull"}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.NotEqual(t, rt, r.json(t)["refresh_token"], "rotated")
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/v2/team/app/tags/list", bearer(r.json(t)["access_token"].(string))).status)

	r = postForm(t, realm, "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"reauth"}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
	r = postForm(t, realm, "", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
	oauthToken := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["refresh_token"].(string)
	r = postForm(t, realm, "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {oauthToken}, "client_id": {clientID}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"], "an OAuth2 refresh token is not a registry one")
}

func TestRegistryTokenPOSTCanBeRefused(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		srv, _ := newTestServer(t, func(c *Config) { c.Registry.TokenPOST = status })
		r := postForm(t, srv.URL()+"/registry/token", "", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}})
		assert.Equal(t, status, r.status)
		if status == http.StatusMethodNotAllowed {
			assert.Equal(t, "GET", r.header.Get("Allow"))
		}
		assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/registry/token?scope=repository:team/app:pull", basic("alice", "wonderland")).status,
			"GET still works")
	}
}

func TestRegistryOfflineToken(t *testing.T) {
	srv, _ := newTestServer(t)
	r := get(t, srv.URL()+"/registry/token?offline_token=true&client_id=x&scope=repository:team/app:pull", basic("bob", "builder"))
	require.Equal(t, http.StatusOK, r.status)
	assert.NotEmpty(t, r.json(t)["refresh_token"])
	r = get(t, srv.URL()+"/registry/token?offline_token=true&client_id=x", "")
	assert.Nil(t, r.json(t)["refresh_token"], "no refresh token for anonymous")
}
