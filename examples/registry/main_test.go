package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func TestRunListsTheTagsOfTheInProcessMock(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	assert.Equal(t, "latest\nv1\n", out.String())
}

func TestRunAgainstARunningRegistry(t *testing.T) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()

	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL() + "/", "-repo", "team/app", "-user", "bob", "-password", "builder"}, &out))
	assert.Equal(t, "latest\nv1\n", out.String())
	var statuses []int
	for _, r := range srv.RequestsTo("/v2/") {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []int{401, 200}, statuses, "the challenge, then the retry with the token")
	assert.Equal(t, 1, srv.RegistryTokenGrants())

	// team/app is not public: anonymously, the realm grants nothing.
	out.Reset()
	err := run([]string{"-url", srv.URL(), "-repo", "team/app"}, &out)
	assert.ErrorIs(t, err, reauth.ErrUnauthorized)
	assert.Empty(t, out.String())

	err = run([]string{"-url", srv.URL(), "-repo", "team/app", "-user", "bob", "-password", "wrong-pw"}, &out)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-pw")
}

func TestRunFollowsPagination(t *testing.T) {
	pages := map[string]string{
		"":  `{"name":"r","tags":["a","b"]}`,
		"b": `{"name":"r","tags":["c"]}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last := r.URL.Query().Get("last")
		if last == "" {
			w.Header().Set("Link", `</v2/r/tags/list?n=2&last=b>; rel="next"`)
		}
		w.Write([]byte(pages[last]))
	}))
	defer srv.Close()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL, "-repo", "r"}, &out))
	assert.Equal(t, "a\nb\nc\n", out.String())
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "ftp://example.com"},
		{"-url", "no-scheme"},
		{"-nonsense"},
		{"extra"},
	} {
		assert.Error(t, run(args, &bytes.Buffer{}), args)
	}
}

// TestHelpPrintsUsageAndExits0: -h is a request for the usage, not a
// failure; a flag the command does not know is one.
func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: registry "), out.String())
	assert.Contains(t, out.String(), "-url")
	assert.NotContains(t, out.String(), "latest", "-h runs nothing")
	assert.Empty(t, stderr.String())

	assert.Equal(t, 1, exitCode(run([]string{"-no-such-flag"}, &bytes.Buffer{}), &stderr))
	assert.Contains(t, stderr.String(), "registry: flag provided but not defined: -no-such-flag")
}
