package mockserver

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Bearer scenario answers as RFC 6750 §3 says.
func TestBearerErrors(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name, path, authorization string
		status                    int
		challenge                 string
	}{
		{"valid token", "/bearer/", bearer("mock-token-read"), 200, ""},
		{"no token: bare challenge (§3.1)", "/bearer/", "", 401, `Bearer realm="bearer@reauth.mock"`},
		{"another scheme: bare challenge", "/bearer/", basic("alice", "wonderland"), 401, `Bearer realm="bearer@reauth.mock"`},
		{"unknown token", "/bearer/", bearer("mock-token-nope"), 401,
			`Bearer realm="bearer@reauth.mock", error="invalid_token", error_description="the access token is not valid"`},
		{"malformed: two tokens", "/bearer/", "Bearer a b", 400, ""},
		{"malformed: params", "/bearer/", `Bearer token="x"`, 400, ""},
		{"malformed: empty", "/bearer/", "Bearer", 400, ""},
		{"scope admin missing", "/bearer/admin", bearer("mock-token-read"), 403,
			`Bearer realm="bearer@reauth.mock", error="insufficient_scope", error_description="the token lacks scope admin", scope="admin"`},
		{"scope admin missing, sub-path", "/bearer/admin/users", bearer("mock-token-read"), 403, ""},
		{"scope admin present", "/bearer/admin", bearer("mock-token-admin"), 200, ""},
		{"admin-ish path is not admin", "/bearer/administrivia", bearer("mock-token-read"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv.URL()+tt.path, tt.authorization)
			assert.Equal(t, tt.status, r.status, r.body)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, r.header.Get("WWW-Authenticate"))
			}
			if tt.status == http.StatusBadRequest {
				chs := challenges(t, r)
				require.Len(t, chs, 1)
				assert.Equal(t, "invalid_request", chs[0].Param("error"))
			}
		})
	}
}

func TestBearerTokensAreConfiguration(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Bearer.Tokens = map[string][]string{"tok-x": {"admin"}} })
	r := get(t, srv.URL()+"/bearer/admin", bearer("tok-x"))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, []any{"admin"}, r.json(t)["scopes"])
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+"/bearer/", bearer("mock-token-read")).status)
}
