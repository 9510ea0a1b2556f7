package mockserver

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	clientID     = "reauth-client"
	clientSecret = "reauth-secret"
)

func clientBasic() string { return basic(clientID, clientSecret) }

// tokenGrant posts a grant with Basic client authentication and returns
// the JSON answer.
func tokenGrant(t *testing.T, srv *Server, form url.Values) map[string]any {
	t.Helper()
	r := postForm(t, srv.URL()+"/oauth2/token", clientBasic(), form)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	return r.json(t)
}

func TestClientCredentialsGrant(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tt := range []struct {
		name, authorization string
		form                url.Values
	}{
		{"client in Basic", clientBasic(), url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}},
		{"client in the body", "", url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"},
			"client_id": {clientID}, "client_secret": {clientSecret}}},
		{"client in Basic, client_id in the body too", clientBasic(), url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"},
			"client_id": {clientID}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.TokenGrants()
			r := postForm(t, srv.URL()+"/oauth2/token", tt.authorization, tt.form)
			require.Equal(t, http.StatusOK, r.status, r.body)
			m := r.json(t)
			assert.Equal(t, "Bearer", m["token_type"])
			assert.Equal(t, float64(3600), m["expires_in"])
			assert.Equal(t, "read write", m["scope"])
			assert.NotEmpty(t, m["refresh_token"], "Config.OAuth2.ClientCredentialsRefresh is on by default")
			assert.Equal(t, before+1, srv.TokenGrants())

			res := get(t, srv.URL()+"/oauth2/resource", bearer(m["access_token"].(string)))
			require.Equal(t, http.StatusOK, res.status)
			assert.Equal(t, clientID, res.json(t)["client"])
		})
	}
}

func TestClientCredentialsWithoutRefreshToken(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.OAuth2.ClientCredentialsRefresh = false })
	m := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})
	assert.Nil(t, m["refresh_token"], "RFC 6749 §4.4.3")
}

// Token endpoint errors follow RFC 6749 §5.2.
func TestTokenEndpointErrors(t *testing.T) {
	srv, _ := newTestServer(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, vs := range cc {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	tests := []struct {
		name, authorization, contentType, body string
		status                                 int
		code                                   string
	}{
		{"no client authentication", "", "", cc.Encode(), 401, "invalid_client"},
		{"wrong client secret", basic(clientID, "nope"), "", cc.Encode(), 401, "invalid_client"},
		{"unknown client", basic("who", clientSecret), "", cc.Encode(), 401, "invalid_client"},
		{"wrong secret in the body", "", "", with(url.Values{"client_id": {clientID}, "client_secret": {"nope"}}).Encode(), 401, "invalid_client"},
		{"client_id without secret", "", "", with(url.Values{"client_id": {clientID}}).Encode(), 401, "invalid_client"},
		{"Bearer client authentication", bearer("x"), "", cc.Encode(), 401, "invalid_client"},
		{"two client authentications", clientBasic(), "", with(url.Values{"client_secret": {clientSecret}}).Encode(), 400, "invalid_request"},
		{"client_id differs from Basic", clientBasic(), "", with(url.Values{"client_id": {"other"}}).Encode(), 400, "invalid_request"},
		{"no grant_type", clientBasic(), "", "scope=read", 400, "invalid_request"},
		{"unknown grant_type", clientBasic(), "", "grant_type=implicit", 400, "unsupported_grant_type"},
		{"scope not granted", clientBasic(), "", with(url.Values{"scope": {"read root"}}).Encode(), 400, "invalid_scope"},
		{"parameter twice", clientBasic(), "", "grant_type=client_credentials&grant_type=password", 400, "invalid_request"},
		{"JSON body", clientBasic(), "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"bad form encoding", clientBasic(), "", "grant_type=%zz", 400, "invalid_request"},
		{"password grant, wrong password", clientBasic(), "", "grant_type=password&username=alice&password=x", 400, "invalid_grant"},
		{"password grant, no username", clientBasic(), "", "grant_type=password&password=x", 400, "invalid_request"},
		{"refresh grant, no token", clientBasic(), "", "grant_type=refresh_token", 400, "invalid_request"},
		{"refresh grant, unknown token", clientBasic(), "", "grant_type=refresh_token&refresh_token=nope", 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			before := srv.TokenGrants()
			r := send(t, http.MethodPost, srv.URL()+"/oauth2/token", tt.authorization, http.Header{"Content-Type": {ct}}, tt.body)
			assert.Equal(t, tt.status, r.status)
			m := r.json(t)
			assert.Equal(t, tt.code, m["error"])
			assert.NotEmpty(t, m["error_description"])
			if tt.status == http.StatusUnauthorized {
				assert.Equal(t, `Basic realm="oauth2/token@reauth.mock", charset="UTF-8"`, r.header.Get("WWW-Authenticate"))
			}
			assert.NotContains(t, r.body, clientSecret)
			assert.Equal(t, before, srv.TokenGrants())
		})
	}
	r := get(t, srv.URL()+"/oauth2/token", clientBasic())
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
	assert.Equal(t, "POST", r.header.Get("Allow"))
}

func TestAccessTokensExpireOnTheClock(t *testing.T) {
	srv, clock := newTestServer(t, func(c *Config) { c.OAuth2.AccessTokenLifetime = 10 * time.Minute })
	tok := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	clock.Advance(10*time.Minute - time.Second)
	require.Equal(t, http.StatusOK, get(t, srv.URL()+"/oauth2/resource", bearer(tok)).status)
	clock.Advance(time.Second)
	r := get(t, srv.URL()+"/oauth2/resource", bearer(tok))
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, `Bearer realm="oauth2@reauth.mock", error="invalid_token", error_description="the access token expired"`,
		r.header.Get("WWW-Authenticate"))
}

func TestOAuth2ResourceTakesOnlyItsOwnTokens(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tt := range []struct {
		name, authorization, challenge string
		status                         int
	}{
		{"none", "", `Bearer realm="oauth2@reauth.mock"`, 401},
		{"static token of /bearer/", bearer("mock-token-admin"), `Bearer realm="oauth2@reauth.mock", error="invalid_token", error_description="the access token is unknown here"`, 401},
		{"malformed", "Bearer a=b=c", "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv.URL()+"/oauth2/resource", tt.authorization)
			assert.Equal(t, tt.status, r.status)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, r.header.Get("WWW-Authenticate"))
			}
		})
	}
	rt := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["refresh_token"].(string)
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/oauth2/resource", bearer(rt)).status, "a refresh token is no access token")
}

func TestRefreshTokenRotation(t *testing.T) {
	srv, _ := newTestServer(t)
	first := tokenGrant(t, srv, url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"builder"}, "scope": {"read write"}})
	rt1 := first["refresh_token"].(string)
	require.NotEmpty(t, rt1)

	second := tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "scope": {"read"}})
	rt2 := second["refresh_token"].(string)
	assert.NotEqual(t, rt1, rt2, "rotated")
	assert.NotEqual(t, first["access_token"], second["access_token"])
	assert.Equal(t, "read", second["scope"], "narrowed on request (RFC 6749 §6)")
	res := get(t, srv.URL()+"/oauth2/resource", bearer(second["access_token"].(string)))
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "bob", res.json(t)["user"], "the resource owner carries over")

	r := postForm(t, srv.URL()+"/oauth2/token", clientBasic(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	assert.Equal(t, http.StatusBadRequest, r.status, "a used refresh token is invalid")
	assert.Equal(t, "invalid_grant", r.json(t)["error"])

	r = postForm(t, srv.URL()+"/oauth2/token", clientBasic(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "scope": {"admin"}})
	assert.Equal(t, "invalid_scope", r.json(t)["error"], "a refresh cannot widen the scope")

	tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
}

func TestRefreshTokenBelongsToItsClient(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.OAuth2.Clients["other"] = "other-secret" })
	rt := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["refresh_token"].(string)
	r := postForm(t, srv.URL()+"/oauth2/token", basic("other", "other-secret"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
	tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func TestRefreshWithoutRotationKeepsTheRefreshToken(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.OAuth2.RotateRefreshTokens = false })
	rt := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["refresh_token"].(string)
	for range 2 {
		m := tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		assert.Nil(t, m["refresh_token"])
	}
}

func TestRefreshTokensExpire(t *testing.T) {
	srv, clock := newTestServer(t, func(c *Config) { c.OAuth2.RefreshTokenLifetime = time.Hour })
	rt := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["refresh_token"].(string)
	clock.Advance(time.Hour)
	r := postForm(t, srv.URL()+"/oauth2/token", clientBasic(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
}

func TestRevocation(t *testing.T) {
	srv, _ := newTestServer(t)
	m := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})
	at, rt := m["access_token"].(string), m["refresh_token"].(string)

	assert.True(t, srv.RevokeAccessToken(at))
	assert.False(t, srv.RevokeAccessToken(at), "already revoked")
	assert.False(t, srv.RevokeAccessToken(rt), "not an access token")
	r := get(t, srv.URL()+"/oauth2/resource", bearer(at))
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error_description="the access token was revoked"`)

	m = tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	at2, rt2 := m["access_token"].(string), m["refresh_token"].(string)
	srv.RevokeAll()
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/oauth2/resource", bearer(at2)).status)
	r = postForm(t, srv.URL()+"/oauth2/token", clientBasic(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/bearer/", bearer("mock-token-read")).status, "static tokens stay")

	m = tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})
	rt3 := m["refresh_token"].(string)
	assert.True(t, srv.RevokeRefreshToken(rt3))
	r = postForm(t, srv.URL()+"/oauth2/token", clientBasic(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt3}})
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
}

func TestRevocationEndpoint(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.OAuth2.Clients["other"] = "other-secret" })
	at := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)

	r := postForm(t, srv.URL()+"/oauth2/revoke", basic("other", "other-secret"), url.Values{"token": {at}})
	assert.Equal(t, http.StatusOK, r.status, "RFC 7009 §2.2: 200 even for a token not the client's")
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/oauth2/resource", bearer(at)).status, "another client cannot revoke it")

	r = postForm(t, srv.URL()+"/oauth2/revoke", clientBasic(), url.Values{"token": {at}})
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/oauth2/resource", bearer(at)).status)

	assert.Equal(t, http.StatusUnauthorized, postForm(t, srv.URL()+"/oauth2/revoke", "", url.Values{"token": {at}}).status)
	assert.Equal(t, http.StatusBadRequest, postForm(t, srv.URL()+"/oauth2/revoke", clientBasic(), url.Values{}).status)
}

func TestTokenEndpointFailureStatus(t *testing.T) {
	srv, _ := newTestServer(t)
	srv.SetTokenEndpointFailure(TokenEndpointFailure{Status: http.StatusInternalServerError, Times: 2})
	cc := url.Values{"grant_type": {"client_credentials"}}
	for range 2 {
		r := postForm(t, srv.URL()+"/oauth2/token", clientBasic(), cc)
		assert.Equal(t, http.StatusInternalServerError, r.status)
		assert.Equal(t, "server_error", r.json(t)["error"])
	}
	tokenGrant(t, srv, cc)
	assert.Equal(t, 1, srv.TokenGrants())

	srv.SetTokenEndpointFailure(TokenEndpointFailure{Status: http.StatusServiceUnavailable})
	for range 3 {
		assert.Equal(t, http.StatusServiceUnavailable, postForm(t, srv.URL()+"/oauth2/token", clientBasic(), cc).status)
	}
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL()+"/registry/token", "").status, "the registry token endpoint too")
	srv.SetTokenEndpointFailure(TokenEndpointFailure{})
	tokenGrant(t, srv, cc)
}

func TestTokenEndpointFailureDelayOutlastsTheClient(t *testing.T) {
	srv, _ := newTestServer(t)
	srv.SetTokenEndpointFailure(TokenEndpointFailure{Delay: time.Hour, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/oauth2/token", nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "no answer within the client's deadline")
	// The delay ended with the client; the next request is served.
	tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})
}

func TestTokenReplayHandsBackTheRefusedToken(t *testing.T) {
	srv, _ := newTestServer(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	at := tokenGrant(t, srv, cc)["access_token"].(string)
	srv.SetTokenReplay(true)
	srv.RevokeAccessToken(at)
	assert.Equal(t, at, tokenGrant(t, srv, cc)["access_token"])
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/oauth2/resource", bearer(at)).status)
	srv.SetTokenReplay(false)
	fresh := tokenGrant(t, srv, cc)["access_token"].(string)
	assert.NotEqual(t, at, fresh)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/oauth2/resource", bearer(fresh)).status)
}

// RFC 9470: the resource asks for a stronger or more recent
// authentication, and the token endpoint can provide it.
func TestStepUp(t *testing.T) {
	srv, clock := newTestServer(t)
	plain := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}})
	r := get(t, srv.URL()+"/stepup/", bearer(plain["access_token"].(string)))
	require.Equal(t, http.StatusUnauthorized, r.status)
	chs := challenges(t, r)
	require.Len(t, chs, 1)
	assert.Equal(t, "insufficient_user_authentication", chs[0].Param("error"))
	assert.Equal(t, "urn:reauth:mock:mfa", chs[0].Param("acr_values"))
	assert.Equal(t, "stepup@reauth.mock", chs[0].Param("realm"))

	strong := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}, "acr_values": {chs[0].Param("acr_values")}})
	r = get(t, srv.URL()+"/stepup/", bearer(strong["access_token"].(string)))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "urn:reauth:mock:mfa", r.json(t)["acr"])

	maxAge := "/stepup/max-age/"
	require.Equal(t, http.StatusOK, get(t, srv.URL()+maxAge, bearer(plain["access_token"].(string))).status)
	clock.Advance(5*time.Minute + time.Second)
	r = get(t, srv.URL()+maxAge, bearer(plain["access_token"].(string)))
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, "300", challenges(t, r)[0].Param("max_age"))
	assert.Equal(t, "insufficient_user_authentication", challenges(t, r)[0].Param("error"))

	refreshed := tokenGrant(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {plain["refresh_token"].(string)}})
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+maxAge, bearer(refreshed["access_token"].(string))).status,
		"a refresh is not a new authentication")
	again := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}, "max_age": {"300"}})
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+maxAge, bearer(again["access_token"].(string))).status)

	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/stepup/", "").status)
	assert.Equal(t, `Bearer realm="stepup@reauth.mock"`, get(t, srv.URL()+"/stepup/", "").header.Get("WWW-Authenticate"))
}

func TestOAuth2ResourceAdminNeedsScopeAdmin(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tt := range []struct {
		scope  string
		status int
	}{
		{"read", http.StatusForbidden},
		{"read admin", http.StatusOK},
	} {
		at := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}, "scope": {tt.scope}})["access_token"].(string)
		assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/oauth2/resource", bearer(at)).status, tt.scope)
		r := get(t, srv.URL()+"/oauth2/resource/admin", bearer(at))
		require.Equal(t, tt.status, r.status, tt.scope)
		if tt.status == http.StatusForbidden {
			ch := challenges(t, r)[0]
			assert.Equal(t, "insufficient_scope", ch.Param("error"))
			assert.Equal(t, "admin", ch.Param("scope"))
		}
	}
}
