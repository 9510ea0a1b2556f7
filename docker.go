package reauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxDockerConfig bounds the size of a Docker config.json.
const maxDockerConfig = 4 << 20

// dockerHubServer is the key Docker keeps Docker Hub's credentials under,
// and the server URL its helpers are asked for.
const dockerHubServer = "https://index.docker.io/v1/"

// dockerHubRealm is the origin of Docker Hub's token realm.
const dockerHubRealm = "https://auth.docker.io"

// DockerKeychain returns a Keychain of the registry credentials in Docker's
// config.json, read once, now: configDir's, or when it is empty
// $DOCKER_CONFIG's, else ~/.docker's. A missing file is an empty keychain.
//
// For a registry host (host:port when the origin has a port other than
// 443), credHelpers names the helper to ask; else credsStore does; else the
// auths entry (keyed by host or by a URL of it) gives "auth" (base64
// user:password), "username" and "password", or an "identitytoken" (sent to
// the token realm as a refresh token). A helper is run as
// docker-credential-NAME get, found in $PATH, with the server on stdin, a
// timeout of 30 s and at most 1 MiB of output; its stderr is discarded. A
// helper that has nothing for the registry ("credentials not found") means
// anonymous pulls. Docker Hub's names (docker.io, index.docker.io,
// registry-1.docker.io) share Docker's key for it.
//
// The credentials are [Registry] credentials with default
// [RegistryOptions]: the password goes to the token realm under the realm
// policy, or to the registry itself when it challenges for Basic.
func DockerKeychain(configDir string) (Keychain, error) {
	if configDir == "" {
		configDir = os.Getenv("DOCKER_CONFIG")
	}
	if configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("reauth: no Docker config directory: $DOCKER_CONFIG is unset and %s", strings.TrimPrefix(err.Error(), "reauth: "))
		}
		configDir = filepath.Join(home, ".docker")
	}
	path := filepath.Join(configDir, "config.json")
	k := &dockerKeychain{path: path, timeout: helperTimeout}
	data, err := readBounded(path, maxDockerConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reauth: Docker config %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &k.cfg); err != nil {
		return nil, fmt.Errorf("reauth: Docker config %s%s is not valid JSON", path, jsonErrorLine(data, err))
	}
	return k, nil
}

// jsonErrorLine is " line N" for a JSON error that has an offset. The
// error's own text is not used: it may quote a value.
func jsonErrorLine(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return ""
	}
	return fmt.Sprintf(" line %d", 1+bytes.Count(data[:off], []byte("\n")))
}

type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

type dockerKeychain struct {
	path    string
	cfg     dockerConfig
	timeout time.Duration
}

func (k *dockerKeychain) String() string { return "docker " + k.path }

// Resolve returns the credentials for the registry at origin, or nil when
// config.json has none for it.
func (k *dockerKeychain) Resolve(ctx context.Context, origin string) (Credentials, error) {
	u, err := parseKeychainOrigin(origin)
	if err != nil {
		return nil, err
	}
	host := strings.ToLower(u.Hostname())
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") {
		host += ":" + p
	}
	server := host
	names := []string{host}
	var opts RegistryOptions
	if isDockerHub(host) {
		server = dockerHubServer
		names = []string{dockerHubServer, "index.docker.io", "docker.io", "registry-1.docker.io"}
		// Docker Hub's registry names its token realm on another origin;
		// the login may go there (and only there) besides the registry.
		opts.RealmOrigins = []string{dockerHubRealm}
	}
	for _, n := range names {
		if helper, ok := k.cfg.CredHelpers[n]; ok && helper != "" {
			return k.fromHelper(ctx, helper, server, opts)
		}
	}
	if k.cfg.CredsStore != "" {
		return k.fromHelper(ctx, k.cfg.CredsStore, server, opts)
	}
	for _, n := range names {
		for key, a := range k.cfg.Auths {
			if key == n || dockerHostOf(key) == n {
				return a.credentials(k.path, key, opts)
			}
		}
	}
	return nil, nil
}

// isDockerHub reports whether host is one of Docker Hub's names.
func isDockerHub(host string) bool {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// dockerHostOf is the host of an auths key written as a URL
// ("https://registry.example.com/v1/"), as Docker matches it.
func dockerHostOf(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(key), "https://"), "http://")
	host, _, _ := strings.Cut(key, "/")
	return host
}

func (a dockerAuth) credentials(path, key string, opts RegistryOptions) (Credentials, error) {
	user, pass := a.Username, a.Password
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("reauth: Docker config %s: auths[%q].auth is not base64", path, key)
		}
		var ok bool
		if user, pass, ok = strings.Cut(string(raw), ":"); !ok {
			return nil, fmt.Errorf("reauth: Docker config %s: auths[%q].auth is not base64 of user:password", path, key)
		}
	}
	if a.IdentityToken != "" {
		opts.RefreshToken = a.IdentityToken
		return RegistryWithOptions(user, "", opts), nil
	}
	if user == "" && pass == "" {
		return nil, nil
	}
	return RegistryWithOptions(user, pass, opts), nil
}

// dockerHelperOutput is what docker-credential-* get prints.
type dockerHelperOutput struct {
	ServerURL string
	Username  string
	Secret    string
}

// fromHelper runs docker-credential-name get for server.
func (k *dockerKeychain) fromHelper(ctx context.Context, name, server string, opts RegistryOptions) (Credentials, error) {
	if strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("reauth: Docker config %s: credential helper name %q contains a path separator", k.path, name)
	}
	prog := "docker-credential-" + name
	out, err := runHelper(ctx, k.timeout, "", []byte(server), prog, "get")
	if err != nil {
		var exit *helperExitError
		if errors.As(err, &exit) && strings.Contains(string(out), "credentials not found") {
			return nil, nil
		}
		return nil, err
	}
	var o dockerHelperOutput
	if err := json.Unmarshal(out, &o); err != nil {
		return nil, fmt.Errorf("reauth: %s get printed something other than the helper JSON", prog)
	}
	if o.Username == "<token>" {
		opts.RefreshToken = o.Secret
		return RegistryWithOptions("", "", opts), nil
	}
	if o.Username == "" && o.Secret == "" {
		return nil, nil
	}
	return RegistryWithOptions(o.Username, o.Secret, opts), nil
}
