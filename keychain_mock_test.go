//go:build unix

package reauth_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

// A pull of a private repository through a Transport whose only
// credentials are Keychain: DockerKeychain, from config.json alone. The
// password goes to the registry's token realm, the registry gets tokens.
func TestKeychainDockerRegistryPull(t *testing.T) {
	srv := startMock(t)
	host := strings.TrimPrefix(srv.URL(), "http://")
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"),
		[]byte(`{"auths": {"`+host+`": {"auth": "`+auth+`"}}}`), 0o600))
	kc, err := reauth.DockerKeychain(dir)
	require.NoError(t, err)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	c := &http.Client{Transport: &reauth.Transport{Base: base, Keychain: kc}}

	resp, err := (&http.Client{Transport: base}).Get(srv.URL() + "/v2/team/app/tags/list")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "team/app is private")

	assert.Equal(t, []string{"latest", "v1"}, listTags(t, c, srv, "team/app"))
	tok := srv.RequestsTo("/registry/token")
	require.NotEmpty(t, tok)
	for _, r := range tok {
		assert.Equal(t, "Basic", r.Scheme, "alice's password goes to the realm")
	}
	for _, r := range srv.RequestsTo("/v2/") {
		assert.NotEqual(t, "Basic", r.Scheme, "the registry itself gets tokens, never the password")
	}
}
