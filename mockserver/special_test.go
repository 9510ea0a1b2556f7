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

func TestForbiddenHiddenAndApache(t *testing.T) {
	srv, _ := newTestServer(t)
	alice, bob := basic("alice", "wonderland"), basic("bob", "builder")
	tests := []struct {
		path, authorization string
		status              int
		challenged          bool
	}{
		{"/forbidden/", alice, 200, false},
		{"/forbidden/", bob, 403, false},
		{"/forbidden/", bearer("mock-token-admin"), 200, false},
		{"/forbidden/", bearer("mock-token-read"), 403, false},
		{"/forbidden/", "", 401, true},
		{"/forbidden/", basic("bob", "nope"), 401, true},
		{"/forbidden/", bearer("nope"), 401, true},
		{"/hidden/", alice, 200, false},
		{"/hidden/", bob, 404, false},
		{"/hidden/", "", 401, true},
		{"/apache/", alice, 200, false},
		{"/apache/", bob, 401, true},
		{"/apache/", "", 401, true},
		{"/apache/", bearer("mock-token-admin"), 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+srv.Redact(tt.authorization), func(t *testing.T) {
			r := get(t, srv.URL()+tt.path, tt.authorization)
			assert.Equal(t, tt.status, r.status, r.body)
			if tt.challenged {
				realm := tt.path[1:len(tt.path)-1] + "@reauth.mock"
				assert.Equal(t, `Basic realm="`+realm+`", charset="UTF-8"`, r.header.Get("WWW-Authenticate"))
			} else {
				assert.Empty(t, r.header.Values("WWW-Authenticate"))
			}
		})
	}
}

func TestAdminsAreConfiguration(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Admins = []string{"bob"} })
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/forbidden/", basic("bob", "builder")).status)
	assert.Equal(t, http.StatusForbidden, get(t, srv.URL()+"/forbidden/", basic("alice", "wonderland")).status)
}

func TestOAuth2TokensIdentifyOnTheSpecialScenarios(t *testing.T) {
	srv, _ := newTestServer(t)
	admin := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})["access_token"].(string)
	read := tokenGrant(t, srv, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})["access_token"].(string)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/forbidden/", bearer(admin)).status)
	assert.Equal(t, http.StatusForbidden, get(t, srv.URL()+"/forbidden/", bearer(read)).status)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/no-challenge/", bearer(read)).status)
	srv.RevokeAccessToken(read)
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/no-challenge/", bearer(read)).status)
}

func TestNoChallengeSends401WithoutWWWAuthenticate(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, auth := range []string{"", basic("alice", "nope"), bearer("nope"), "Negotiate abc"} {
		r := get(t, srv.URL()+"/no-challenge/", auth)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		_, present := r.header["Www-Authenticate"]
		assert.False(t, present)
		assert.JSONEq(t, `{"message":"Bad credentials"}`, r.body)
	}
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/no-challenge/", basic("bob", "builder")).status)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/no-challenge/", bearer("mock-token-read")).status)
	assert.Equal(t, http.StatusBadRequest, get(t, srv.URL()+"/no-challenge/", "Basic %%%").status)
}

func TestMalformedChallenges(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tt := range []struct {
		path      string
		parses    bool // reauth.ParseChallenges accepts the field values
		challenge int  // challenges that parse cleanly
	}{
		{"/malformed/", false, 0},
		{"/malformed/unterminated/", false, 0},
		{"/malformed/no-equals/", false, 0},
		{"/malformed/token68-param/", false, 0},
		{"/malformed/duplicate-param/", false, 0},
		{"/malformed/bad-char/", false, 0},
		{"/malformed/empty/", true, 0},
		{"/malformed/huge/", false, 0},
		{"/malformed/unsupported/", true, 1},
		{"/malformed/mixed/", false, 1},
	} {
		t.Run(tt.path, func(t *testing.T) {
			r := get(t, srv.URL()+tt.path, "")
			require.Equal(t, http.StatusUnauthorized, r.status)
			values, present := r.header["Www-Authenticate"]
			require.True(t, present, "a WWW-Authenticate field is sent, broken as it is")
			chs, err := reauth.ParseChallenges(values...)
			assert.Equal(t, tt.parses, err == nil, "%v", err)
			assert.Len(t, chs, tt.challenge)
			assert.Equal(t, http.StatusOK, get(t, srv.URL()+tt.path, basic("alice", "wonderland")).status)
		})
	}
}

func TestStatusFailsFirstThenSucceeds(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, tt := range []struct {
		path   string
		status int
	}{{"/status/429/", 429}, {"/status/503/", 503}} {
		var got []int
		for range 6 {
			r := get(t, srv.URL()+tt.path, "")
			got = append(got, r.status)
			if r.status != http.StatusOK {
				assert.Equal(t, "1", r.header.Get("Retry-After"))
			}
		}
		assert.Equal(t, []int{tt.status, tt.status, 200, tt.status, tt.status, 200}, got, tt.path)
	}
}

func TestFailFirstIsSetAtRunTime(t *testing.T) {
	srv, _ := newTestServer(t)
	get(t, srv.URL()+"/status/429/", "")
	srv.SetFailFirst(0)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/status/429/", "").status)
	srv.SetFailFirst(-1)
	for range 5 {
		assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL()+"/status/503/", "").status)
	}
	srv.SetFailFirst(1)
	assert.Equal(t, http.StatusTooManyRequests, get(t, srv.URL()+"/status/429/", "").status)
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+"/status/429/", "").status)
}

func TestRetryAfterForms(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Status.RetryAfter = 1500 * time.Millisecond })
	assert.Equal(t, "2", get(t, srv.URL()+"/status/429/", "").header.Get("Retry-After"), "delay-seconds, rounded up")

	srv, clock := newTestServer(t, func(c *Config) { c.Status.RetryAfterDate = true; c.Status.RetryAfter = time.Minute })
	r := get(t, srv.URL()+"/status/503/", "")
	when, err := http.ParseTime(r.header.Get("Retry-After"))
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(time.Minute), when)
}

func TestListing(t *testing.T) {
	srv, _ := newTestServer(t)
	r := get(t, srv.URL()+"/", "")
	require.Equal(t, http.StatusOK, r.status)
	for _, want := range []string{`"alice" / "wonderland"  (admin)`, `"Jäsøn Doe" / "Secret, or not?"`, "reauth-client", "mock-token-read",
		"/basic/", "/bearer/admin", "/digest/sha-512-256-sess/", "/digest/userhash/", "/oauth2/token", "/registry/token",
		"/v2/", "/forbidden/", "/hidden/", "/apache/", "/no-challenge/", "/malformed/huge/", "/stepup/max-age/", "/status/503/"} {
		assert.Contains(t, r.body, want)
	}
	assert.Equal(t, srv.Listing(), r.body)
	assert.Contains(t, r.body, "Scenarios (each path works with or without its trailing slash):")

	j := send(t, http.MethodGet, srv.URL()+"/", "", http.Header{"Accept": {"application/json"}}, "")
	m := j.json(t)
	assert.Equal(t, srv.URL(), m["url"])
	assert.Len(t, m["scenarios"], len(srv.Scenarios()))
	assert.Len(t, m["users"], 3)

	for _, sc := range srv.Scenarios() {
		assert.NotEmpty(t, sc.Name)
		assert.NotEmpty(t, sc.Description, sc.Path)
	}
	assert.Equal(t, http.StatusNotFound, get(t, srv.URL()+"/nowhere", "").status)
}
