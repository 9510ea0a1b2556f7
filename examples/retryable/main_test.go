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

// The default run waits for the mock's two Retry-After: 1 (two seconds).
func TestRetryableRunsAgainstTheInProcessMockByDefault(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "503 Service Unavailable, Retry-After: 1"), s)
	assert.Contains(t, s, "attempt 3: GET")
	assert.Contains(t, s, "200 OK")
	assert.Contains(t, s, "the mock server saw 3 request(s)")
}

func TestRetryableRetries429UntilSuccess(t *testing.T) {
	srv := newMock(t, func(c *mockserver.Config) { c.Status.FailFirst, c.Status.RetryAfter = 1, 0 })
	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL() + "/status/429/"}, &out))
	reqs := srv.RequestsTo("/status/429/")
	require.Len(t, reqs, 2)
	assert.Equal(t, http.StatusTooManyRequests, reqs[0].Status)
	assert.Equal(t, http.StatusOK, reqs[1].Status)
}

func TestRetryableNeverRetriesForbidden(t *testing.T) {
	srv := newMock(t, nil)
	err := run([]string{"-url", srv.URL() + "/forbidden/", "-user", "bob", "-password", "builder"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrForbidden)
	assert.Len(t, srv.RequestsTo("/forbidden/"), 2, "the challenge, the answer, and no backoff retry of the 403")
}

func TestRetryableGivesUpAfterItsRetries(t *testing.T) {
	srv := newMock(t, func(c *mockserver.Config) { c.Status.FailFirst, c.Status.RetryAfter = -1, 0 })
	err := run([]string{"-url", srv.URL() + "/status/503/", "-retries", "1"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Len(t, srv.RequestsTo("/status/503/"), 2)
}

// TestHelpPrintsUsageAndExits0: -h is a request for the usage, not a
// failure; a flag the command does not know is one.
func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: retryable "), out.String())
	assert.Contains(t, out.String(), "-url")
	assert.NotContains(t, out.String(), "attempt 1", "-h runs nothing")
	assert.Empty(t, stderr.String())

	assert.Equal(t, 1, exitCode(run([]string{"-no-such-flag"}, &bytes.Buffer{}), &stderr))
	assert.Contains(t, stderr.String(), "retryable: flag provided but not defined: -no-such-flag")
}
