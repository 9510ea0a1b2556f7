package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func TestBasicRunsAgainstTheInProcessMockByDefault(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	s := out.String()
	assert.Contains(t, s, "reauth: retrying with Basic credentials")
	assert.Equal(t, 2, strings.Count(s, "200 OK"), s)
	assert.Contains(t, s, "the mock server saw 3 request(s)", "challenged once, then up front")
	assert.NotContains(t, s, "wonderland")
}

func TestBasicURLFlagTargetsAnotherServer(t *testing.T) {
	srv := mockserver.New(mockserver.DefaultConfig())
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL() + "/basic/", "-user", "bob", "-password", "builder"}, &out))

	reqs := srv.RequestsTo("/basic/")
	require.Len(t, reqs, 3)
	assert.Equal(t, []int{http.StatusUnauthorized, http.StatusOK, http.StatusOK}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status})
	assert.True(t, strings.HasPrefix(reqs[2].Credential, "Basic bob:"), reqs[2].Credential)
	assert.NotContains(t, out.String(), "the mock server saw", "no in-process mock was started")
	assert.NotContains(t, out.String(), "builder")
}

func TestBasicWrongPasswordEndsInUnauthorized(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-password", "not-the-password"}, &out)
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrUnauthorized)
	assert.ErrorIs(t, err, reauth.ErrRefusedAfterRetry)
	assert.NotContains(t, out.String()+err.Error(), "not-the-password")
}

func TestBasicRefusesARelativeURL(t *testing.T) {
	err := run([]string{"-url", "/basic/"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-url")
}

// TestHelpPrintsUsageAndExits0: -h is a request for the usage, not a
// failure; a flag the command does not know is one.
func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: basic "), out.String())
	assert.Contains(t, out.String(), "-url")
	assert.NotContains(t, out.String(), "call 1", "-h runs nothing")
	assert.Empty(t, stderr.String())

	assert.Equal(t, 1, exitCode(run([]string{"-no-such-flag"}, &bytes.Buffer{}), &stderr))
	assert.Contains(t, stderr.String(), "basic: flag provided but not defined: -no-such-flag")
}
