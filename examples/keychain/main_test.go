package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth/mockserver"
)

func TestKeychainRunsAgainstTheInProcessMockByDefault(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(nil, &out))
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "200 OK"), s)
	assert.Contains(t, s, "401 Unauthorized", "the other origin gets no login")
	assert.Contains(t, s, "Transport.Keychain has none for this origin")
	assert.Equal(t, 2, strings.Count(s, "(Basic alice:"), "up front, to 127.0.0.1 only")
	assert.NotContains(t, s, "wonderland")
}

func TestKeychainNetrcFlag(t *testing.T) {
	srv := mockserver.New(mockserver.DefaultConfig())
	t.Cleanup(srv.Close)
	netrc := filepath.Join(t.TempDir(), "netrc")
	require.NoError(t, os.WriteFile(netrc, []byte("machine 127.0.0.1 login bob password builder\n"), 0o600))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("GOAUTH", "off")
	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL() + "/basic/", "-netrc", netrc}, &out))
	reqs := srv.RequestsTo("/basic/")
	require.Len(t, reqs, 1)
	assert.True(t, strings.HasPrefix(reqs[0].Credential, "Basic bob:"), reqs[0].Credential)
	assert.NotContains(t, out.String(), "builder")
}
