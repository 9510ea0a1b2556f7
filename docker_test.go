//go:build unix

package reauth

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeDockerConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600))
	return dir
}

// registryLogin returns what Registry credentials c were made with.
func registryLogin(t *testing.T, c Credentials) (user, pass, refresh string) {
	t.Helper()
	rc, ok := c.(*registryCredentials)
	require.True(t, ok, "Docker credentials are Registry credentials, got %T", c)
	return rc.username, rc.password, rc.opts.RefreshToken
}

func TestDockerAuths(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("u1:p:1"))
	dir := writeDockerConfig(t, `{"auths": {
		"reg.example": {"auth": "`+auth+`"},
		"https://url.example/v1/": {"username": "u2", "password": "p2"},
		"localhost:5000": {"username": "u3", "password": "p3"},
		"tok.example": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("u4:"))+`", "identitytoken": "it4"},
		"https://index.docker.io/v1/": {"username": "hub", "password": "hp"},
		"empty.example": {}
	}}`)
	kc, err := DockerKeychain(dir)
	require.NoError(t, err)
	for origin, want := range map[string][3]string{
		"https://reg.example":          {"u1", "p:1", ""},
		"https://reg.example:443":      {"u1", "p:1", ""},
		"https://url.example":          {"u2", "p2", ""},
		"http://localhost:5000":        {"u3", "p3", ""},
		"https://tok.example":          {"u4", "", "it4"},
		"https://docker.io":            {"hub", "hp", ""},
		"https://index.docker.io":      {"hub", "hp", ""},
		"https://registry-1.docker.io": {"hub", "hp", ""},
	} {
		c, err := kc.Resolve(context.Background(), origin)
		require.NoError(t, err, origin)
		require.NotNil(t, c, origin)
		u, p, r := registryLogin(t, c)
		assert.True(t, [3]string{u, p, r} == want, "login for %s differs", origin) // values not printed
	}
	// Docker Hub's login may go to its token realm, auth.docker.io, and to
	// no other realm; other registries' logins to their own origin only.
	for origin, want := range map[string][]string{
		"https://docker.io":   {dockerHubRealm},
		"https://reg.example": nil,
	} {
		c, err := kc.Resolve(context.Background(), origin)
		require.NoError(t, err)
		assert.Equal(t, want, c.(*registryCredentials).opts.RealmOrigins, origin)
	}
	for _, origin := range []string{"https://reg.example:5000", "https://other.example", "https://empty.example", "http://localhost"} {
		c, err := kc.Resolve(context.Background(), origin)
		require.NoError(t, err, origin)
		assert.Nil(t, c, origin)
	}
}

func TestDockerAuthsSentToTheRegistry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != basicFieldValue("u", "p") {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := writeDockerConfig(t, `{"auths": {"`+host+`": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("u:p"))+`"}}}`)
	kc, err := DockerKeychain(dir)
	require.NoError(t, err)
	c, err := kc.Resolve(context.Background(), srv.URL)
	require.NoError(t, err)
	require.NotNil(t, c)
	resp, err := (&http.Client{Transport: &Transport{Credentials: c, Origins: []string{srv.URL}}}).Get(srv.URL + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestDockerBadConfigNamesFileAndLine(t *testing.T) {
	dir := writeDockerConfig(t, "{\n\"auths\": {\n\"h\": {\"auth\": \"s3cr3t\" \"x\"}}}")
	_, err := DockerKeychain(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "config.json")+" line 3")
	assert.NotContains(t, err.Error(), "s3cr3t")

	dir = writeDockerConfig(t, `{"auths": {"h": {"auth": "s3cr3t!!"}}}`)
	kc, err := DockerKeychain(dir)
	require.NoError(t, err)
	_, err = kc.Resolve(context.Background(), "https://h")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not base64")
	assert.NotContains(t, err.Error(), "s3cr3t")
}

func TestDockerConfigDefaults(t *testing.T) {
	dir := writeDockerConfig(t, `{"auths": {"h": {"username": "u", "password": "p"}}}`)
	t.Setenv("DOCKER_CONFIG", dir)
	kc, err := DockerKeychain("")
	require.NoError(t, err)
	c, err := kc.Resolve(context.Background(), "https://h")
	require.NoError(t, err)
	assert.NotNil(t, c, "$DOCKER_CONFIG is read")

	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", t.TempDir())
	kc, err = DockerKeychain("")
	require.NoError(t, err, "a missing config.json is an empty keychain")
	c, err = kc.Resolve(context.Background(), "https://h")
	require.NoError(t, err)
	assert.Nil(t, c)
}

// dockerHelper installs docker-credential-NAME on $PATH: a program that
// follows the docker-credential-helpers protocol, logging the server it is
// asked for to log, and answering from a table of server → JSON.
func dockerHelper(t *testing.T, name string, answers map[string]string) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	var cases strings.Builder
	for server, out := range answers {
		cases.WriteString("  '" + server + "') printf '%s' '" + out + "' ;;\n")
	}
	script := "#!/bin/sh\n" +
		"[ \"$1\" = get ] || exit 2\n" +
		"server=$(cat)\n" +
		"echo \"$server\" >> " + log + "\n" +
		"echo 'secret-on-stderr' >&2\n" +
		"case \"$server\" in\n" + cases.String() +
		"  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o700))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func TestDockerCredentialHelpers(t *testing.T) {
	storeLog := dockerHelper(t, "store", map[string]string{
		"reg.example":     `{"ServerURL":"reg.example","Username":"su","Secret":"sp"}`,
		dockerHubServer:   `{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-identity"}`,
		"broken.example":  `not json`,
		"anon.example:81": `{"ServerURL":"anon.example:81","Username":"","Secret":""}`,
	})
	perHostLog := dockerHelper(t, "perhost", map[string]string{
		"helped.example": `{"ServerURL":"helped.example","Username":"hu","Secret":"hp"}`,
	})
	dir := writeDockerConfig(t, `{"credsStore": "store", "credHelpers": {"helped.example": "perhost"},
		"auths": {"reg.example": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("file:ignored"))+`"}}}`)
	kc, err := DockerKeychain(dir)
	require.NoError(t, err)
	ctx := context.Background()

	c, err := kc.Resolve(ctx, "https://reg.example")
	require.NoError(t, err)
	u, p, _ := registryLogin(t, c)
	assert.True(t, u == "su" && p == "sp", "credsStore wins over auths, as in Docker")

	c, err = kc.Resolve(ctx, "https://helped.example")
	require.NoError(t, err)
	u, p, _ = registryLogin(t, c)
	assert.True(t, u == "hu" && p == "hp", "credHelpers name the helper per host")

	c, err = kc.Resolve(ctx, "https://registry-1.docker.io")
	require.NoError(t, err)
	u, p, r := registryLogin(t, c)
	assert.True(t, u == "" && p == "" && r == "hub-identity", "<token> means an identity token")

	c, err = kc.Resolve(ctx, "https://unknown.example")
	require.NoError(t, err, "credentials not found is anonymous")
	assert.Nil(t, c)
	c, err = kc.Resolve(ctx, "https://anon.example:81")
	require.NoError(t, err)
	assert.Nil(t, c)

	_, err = kc.Resolve(ctx, "https://broken.example")
	assert.ErrorContains(t, err, "docker-credential-store get printed something other")

	got, err := os.ReadFile(storeLog)
	require.NoError(t, err)
	assert.Equal(t, "reg.example\n"+dockerHubServer+"\nunknown.example\nanon.example:81\nbroken.example\n", string(got))
	got, err = os.ReadFile(perHostLog)
	require.NoError(t, err)
	assert.Equal(t, "helped.example\n", string(got))
}

func TestDockerHelperFailureHidesStderr(t *testing.T) {
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "docker-credential-bad"), []byte("#!/bin/sh\necho s3cr3t >&2\necho s3cr3t-out\nexit 4\n"), 0o700))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	kc, err := DockerKeychain(writeDockerConfig(t, `{"credsStore": "bad"}`))
	require.NoError(t, err)
	_, err = kc.Resolve(context.Background(), "https://h")
	require.Error(t, err)
	assert.Equal(t, "reauth: docker-credential-bad exited with status 4", err.Error())

	kc, err = DockerKeychain(writeDockerConfig(t, `{"credsStore": "../x"}`))
	require.NoError(t, err)
	_, err = kc.Resolve(context.Background(), "https://h")
	assert.ErrorContains(t, err, "path separator")

	kc, err = DockerKeychain(writeDockerConfig(t, `{"credsStore": "missing-helper"}`))
	require.NoError(t, err)
	_, err = kc.Resolve(context.Background(), "https://h")
	assert.ErrorContains(t, err, "docker-credential-missing-helper")
}
