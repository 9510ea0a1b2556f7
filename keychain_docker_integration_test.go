//go:build integration && unix

package reauth

// DockerKeychain against Debian's docker-credential-pass (with pass and a
// throwaway gpg key) and Debian's docker-registry with htpasswd, started by
// scripts/docker-registry.sh. Both fail, not skip, when what they need is
// missing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDockerCredentialPass(t *testing.T) {
	gpg, pass, helper := lookPath(t, "gpg"), lookPath(t, "pass"), lookPath(t, "docker-credential-pass")
	gnupg := t.TempDir()
	require.NoError(t, os.Chmod(gnupg, 0o700))
	t.Setenv("GNUPGHOME", gnupg)
	t.Setenv("PASSWORD_STORE_DIR", t.TempDir())
	t.Cleanup(func() { _ = exec.Command("gpgconf", "--kill", "gpg-agent").Run() })
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
	}
	run("", gpg, "--batch", "--passphrase", "", "--quick-gen-key", "reauth-test@example.invalid", "default", "default", "never")
	run("", pass, "init", "reauth-test@example.invalid")
	run(`{"ServerURL":"reg.example:5000","Username":"pu","Secret":"ps"}`, helper, "store")
	run(`{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-identity"}`, helper, "store")

	kc, err := DockerKeychain(writeDockerConfig(t, `{"credsStore": "pass"}`))
	require.NoError(t, err)
	ctx := context.Background()
	c, err := kc.Resolve(ctx, "https://reg.example:5000")
	require.NoError(t, err)
	require.NotNil(t, c)
	u, p, _ := registryLogin(t, c)
	assert.True(t, u == "pu" && p == "ps", "the login pass keeps")

	c, err = kc.Resolve(ctx, "https://docker.io")
	require.NoError(t, err)
	require.NotNil(t, c)
	u, p, r := registryLogin(t, c)
	assert.True(t, u == "" && p == "" && r == "hub-identity", "Docker Hub's identity token")

	c, err = kc.Resolve(ctx, "https://unknown.example")
	require.NoError(t, err)
	assert.Nil(t, c, "nothing stored: anonymous")
}

func registryEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set; start the registry with scripts/docker-registry.sh start DIR and export DIR/env", name)
	}
	return v
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestDockerRegistryPullWithConfigOnly(t *testing.T) {
	reg := registryEnv(t, "REAUTH_REGISTRY_URL")
	kc, err := DockerKeychain(registryEnv(t, "REAUTH_REGISTRY_DOCKER_CONFIG"))
	require.NoError(t, err)
	c, err := kc.Resolve(context.Background(), reg)
	require.NoError(t, err)
	require.NotNil(t, c, "config.json has the registry's login")
	// config.json alone: the Transport resolves the registry's login itself.
	client := &http.Client{Transport: &Transport{Keychain: kc}}

	do := func(method, path string, body []byte, contentType string, want int) *http.Response {
		t.Helper()
		target := path
		if !strings.HasPrefix(path, "http") {
			target = reg + path
		}
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		require.NoError(t, err)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		// Without it, distribution converts a manifest to schema 1 (400).
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.Equal(t, want, resp.StatusCode, "%s %s", method, path)
		return resp
	}
	push := func(blob []byte) {
		resp := do("POST", "/v2/reauth/keychain/blobs/uploads/", nil, "", http.StatusAccepted)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		loc = must(url.Parse(reg)).ResolveReference(loc)
		q := loc.Query()
		q.Set("digest", digestOf(blob))
		loc.RawQuery = q.Encode()
		do("PUT", loc.String(), blob, "application/octet-stream", http.StatusCreated).Body.Close()
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("reauth keychain layer")
	push(config)
	push(layer)
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}`,
		len(config), digestOf(config), len(layer), digestOf(layer)))
	do("PUT", "/v2/reauth/keychain/manifests/v1", manifest, "application/vnd.docker.distribution.manifest.v2+json", http.StatusCreated).Body.Close()

	// The pull.
	resp := do("GET", "/v2/reauth/keychain/manifests/v1", nil, "", http.StatusOK)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, digestOf(manifest), digestOf(got))
	resp = do("GET", "/v2/reauth/keychain/blobs/"+digestOf(layer), nil, "", http.StatusOK)
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, layer, got)

	anon, err := http.Get(reg + "/v2/reauth/keychain/manifests/v1")
	require.NoError(t, err)
	anon.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, anon.StatusCode, "the registry wants the login")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
