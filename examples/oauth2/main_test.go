package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func TestRunRefreshesTheRevokedTokenTransparently(t *testing.T) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()

	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL()}, &out))
	assert.Equal(t, "GET /oauth2/resource: 200 (client reauth-client, scopes read)\n"+
		"revoked the access token at /oauth2/revoke\n"+
		"GET /oauth2/resource: 200 (client reauth-client, scopes read)\n"+
		"token fetches: 2\n", out.String())

	var statuses []int
	for _, r := range srv.RequestsTo("/oauth2/resource") {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{200, 401, 200}, statuses, "the revoked token was refused once, then replaced")
	assert.Equal(t, 2, srv.TokenGrants())
	assert.Len(t, srv.RequestsTo("/oauth2/revoke"), 1)
}

func TestRunInProcess(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	assert.Contains(t, out.String(), "token fetches: 2\n")
}

func TestRunWithAWrongSecretIsATokenError(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-client-secret", "not-the-secret"}, &out)
	var te *reauth.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_client", te.Code)
	assert.NotContains(t, err.Error(), "not-the-secret")
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-url", "ftp://x"}, {"-nonsense"}, {"extra"}} {
		assert.Error(t, run(args, &bytes.Buffer{}), args)
	}
}

// TestHelpPrintsUsageAndExits0: -h is a request for the usage, not a
// failure; a flag the command does not know is one.
func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: oauth2 "), out.String())
	assert.Contains(t, out.String(), "-url")
	assert.NotContains(t, out.String(), "GET /oauth2", "-h runs nothing")
	assert.Empty(t, stderr.String())

	assert.Equal(t, 1, exitCode(run([]string{"-no-such-flag"}, &bytes.Buffer{}), &stderr))
	assert.Contains(t, stderr.String(), "oauth2: flag provided but not defined: -no-such-flag")
}
