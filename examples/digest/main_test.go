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

func TestDigestRunsAgainstTheInProcessMockByDefault(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	s := out.String()
	// The mock lists its challenges strongest first.
	_, offered, ok := strings.Cut(s, "challenges: Digest ")
	require.True(t, ok, s)
	strongest, _, _ := strings.Cut(offered, ",")
	assert.Contains(t, s, "the mock server saw 4 request(s)", "challenged once, then one request per call")
	for _, nc := range []string{"nc=00000001", "nc=00000002", "nc=00000003"} {
		assert.Contains(t, s, "algorithm="+strongest+" qop=auth "+nc, "the strongest algorithm, the nonce count counting up")
	}
	assert.NotContains(t, s, "wonderland")
}

func newMock(t *testing.T) *mockserver.Server {
	t.Helper()
	srv := mockserver.New(mockserver.DefaultConfig())
	t.Cleanup(srv.Close)
	return srv
}

func TestDigestNoMD5RefusesAnMD5OnlyServer(t *testing.T) {
	srv := newMock(t)
	err := run([]string{"-url", srv.URL() + "/digest/md5/", "-no-md5"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrUnauthorized)
	assert.ErrorIs(t, err, reauth.ErrDigestChallenge)
	assert.Len(t, srv.RequestsTo("/digest/md5/"), 1, "nothing is sent in answer")
}

func TestDigestWrongRspauthIsAnError(t *testing.T) {
	srv := newMock(t)
	err := run([]string{"-url", srv.URL() + "/digest/bad-rspauth/"}, &bytes.Buffer{})
	assert.ErrorIs(t, err, reauth.ErrDigestRspauth)
}

func TestDigestWrongPasswordEndsInUnauthorized(t *testing.T) {
	srv := newMock(t)
	var out bytes.Buffer
	err := run([]string{"-url", srv.URL() + "/digest/sha-256/", "-password", "not-the-password"}, &out)
	assert.ErrorIs(t, err, reauth.ErrUnauthorized)
	assert.Len(t, srv.RequestsTo("/digest/sha-256/"), 2)
	require.Error(t, err)
	assert.False(t, strings.Contains(out.String()+err.Error(), "not-the-password"))
}

// TestHelpPrintsUsageAndExits0: -h is a request for the usage, not a
// failure; a flag the command does not know is one.
func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: digest "), out.String())
	assert.Contains(t, out.String(), "-url")
	assert.NotContains(t, out.String(), "call 1", "-h runs nothing")
	assert.Empty(t, stderr.String())

	assert.Equal(t, 1, exitCode(run([]string{"-no-such-flag"}, &bytes.Buffer{}), &stderr))
	assert.Contains(t, stderr.String(), "digest: flag provided but not defined: -no-such-flag")
}
