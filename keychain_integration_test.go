//go:build integration && unix

package reauth

// Keychains against the programs they read the same sources as: curl for
// .netrc, git's store helper and the go command for GOAUTH. They run with
// -tags integration (scripts/integration.sh) and fail, not skip, when curl,
// git or go is missing.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is needed by this test (Debian: apt-get install %s)", name, name)
	return p
}

func TestNetrcSameAsCurl(t *testing.T) {
	curl := lookPath(t, "curl")
	for _, tc := range netrcCases {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := recordingServer(t)
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			path := writeNetrc(t, netrcFile(tc.file, u.Hostname(), u.Port()))

			out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "--netrc-file", path, srv.URL+"/").CombinedOutput()
			require.NoError(t, err, "curl: %s", out)
			byCurl := *seen.Load()

			kc, err := NetrcKeychain(path)
			require.NoError(t, err)
			c, err := kc.Resolve(context.Background(), srv.URL)
			require.NoError(t, err)
			byReauth := sendWith(t, srv.URL+"/", c, seen)

			want := ""
			if tc.want != "" {
				user, pass, _ := strings.Cut(tc.want, ":")
				want = basicFieldValue(user, pass)
			}
			assert.True(t, byCurl == want, "curl no longer sends what the table says") // values not printed
			assert.True(t, byReauth == byCurl, "reauth and curl send different Authorization")
		})
	}
}

// gitHome makes a throwaway HOME whose git keeps credentials with the store
// helper, holding creds ("https://user:pass@host"), after a helper that logs
// each action git asks of helpers (get, store, erase) to home/actions.
func gitHome(t *testing.T, creds string) (home string) {
	t.Helper()
	git := lookPath(t, "git")
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	logger := `!f() { echo "$1" >> '` + filepath.Join(home, "actions") + `'; cat >/dev/null; }; f`
	for _, helper := range []string{logger, "store"} {
		out, err := exec.Command(git, "config", "--global", "--add", "credential.helper", helper).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	require.NoError(t, os.WriteFile(filepath.Join(home, ".git-credentials"), []byte(creds+"\n"), 0o600))
	return home
}

func TestGOAUTHGitStore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		accept      bool
		wantActions string // what git asked of its helpers
		wantStore   bool   // the entry is still stored afterwards
	}{
		{"approved when taken", true, "get\nstore\n", true},
		// The retry that carried git's credentials is refused: reject
		// runs in Refused, within the same request.
		{"rejected when refused", false, "get\nerase\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Header.Get("Authorization"))
				mu.Unlock()
				if !tc.accept || r.Header.Get("Authorization") != basicFieldValue("gu", "gp") {
					w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
					w.WriteHeader(http.StatusUnauthorized)
				}
			}))
			defer srv.Close()
			home := gitHome(t, "https://gu:gp@"+strings.TrimPrefix(srv.URL, "https://"))

			kc, err := GOAUTHKeychain("git " + t.TempDir())
			require.NoError(t, err)
			client := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Keychain: kc}}
			resp, err := client.Get(srv.URL + "/repo.git/info/refs")
			if tc.accept {
				require.NoError(t, err)
				resp.Body.Close()
			} else {
				var ue *UnauthorizedError
				require.ErrorAs(t, err, &ue)
			}

			mu.Lock()
			require.Len(t, seen, 2)
			assert.Equal(t, "", seen[0], "git runs only after a refusal, as in the go command")
			assert.True(t, seen[1] == basicFieldValue("gu", "gp"), "the retry carries what git credential fill gave")
			mu.Unlock()
			stored, err := os.ReadFile(filepath.Join(home, ".git-credentials"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantStore, strings.Contains(string(stored), "gu:gp"), "git credential approve/reject ran")
			actions, err := os.ReadFile(filepath.Join(home, "actions"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantActions, string(actions))
		})
	}
}

// moduleProxy is a GOPROXY for example.com/m@v1.0.0 that wants
// "Authorization: Bearer fresh" and records the URLs and Authorization of
// the requests it gets.
type moduleProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string // "path Authorization"
}

func newModuleProxy(t *testing.T) *moduleProxy {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for name, body := range map[string]string{"go.mod": "module example.com/m\n", "m.go": "package m\n"} {
		w, err := zw.Create("example.com/m@v1.0.0/" + name)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	files := map[string][]byte{
		"/example.com/m/@v/list":        []byte("v1.0.0\n"),
		"/example.com/m/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`),
		"/example.com/m/@v/v1.0.0.mod":  []byte("module example.com/m\n"),
		"/example.com/m/@v/v1.0.0.zip":  zbuf.Bytes(),
	}
	p := &moduleProxy{}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		p.mu.Lock()
		p.reqs = append(p.reqs, r.URL.Path+" "+auth)
		p.mu.Unlock()
		if auth != "Bearer fresh" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="proxy"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *moduleProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

// transcript reads a goauthHelper log as calls: args, then the stdin's
// status line and its header lines sorted (the go command writes them in
// map order), without Date.
func transcript(t *testing.T, log string) []string {
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	var calls []string
	for _, c := range strings.Split(string(data), "call ")[1:] {
		lines := strings.Split(strings.TrimRight(c, "\n"), "\n")
		head := lines[0]
		var fields []string
		for _, l := range lines[1:] {
			if l != "" && !strings.HasPrefix(l, "Date: ") && !strings.HasPrefix(l, "HTTP/") {
				fields = append(fields, l)
			} else if strings.HasPrefix(l, "HTTP/") {
				head += " | " + l
			}
		}
		slices.Sort(fields)
		calls = append(calls, head+" | "+strings.Join(fields, " | "))
	}
	return calls
}

func TestGOAUTHSameAsGoCommand(t *testing.T) {
	goCmd := lookPath(t, "go")
	p := newModuleProxy(t)
	first := p.srv.URL + "/\n\nAuthorization: Bearer stale\n\n"
	after := p.srv.URL + "/\n\nAuthorization: Bearer fresh\n\n"
	helper, log := goauthHelper(t, first, after)

	certFile := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o600))
	tmp := t.TempDir()
	cmd := exec.Command(goCmd, "mod", "download", "-json", "example.com/m@v1.0.0")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(),
		"GOAUTH="+helper, "GOPROXY="+p.srv.URL, "GOSUMDB=off", "GONOSUMDB=*", "GOFLAGS=-modcacherw",
		"GOMODCACHE="+filepath.Join(tmp, "modcache"), "GOPATH="+filepath.Join(tmp, "gopath"),
		"GOTOOLCHAIN=local", "GO111MODULE=on", "SSL_CERT_FILE="+certFile, "NETRC="+filepath.Join(tmp, "none"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go mod download: %s", out)
	byGo := p.requests()
	goCalls := transcript(t, log)
	require.NoError(t, os.Remove(log))
	require.NotEmpty(t, byGo)

	kc, err := GOAUTHKeychain(helper)
	require.NoError(t, err)
	client := &http.Client{Transport: &Transport{Base: p.srv.Client().Transport, Keychain: kc}}
	// The same requests, in the go command's order, each sent once.
	var paths []string
	for _, r := range byGo {
		path, _, _ := strings.Cut(r, " ")
		if !slices.Contains(paths, path) {
			paths = append(paths, path)
		}
	}
	for _, path := range paths {
		resp, err := client.Get(p.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.Equal(t, byGo, p.requests(), "the same Authorization on the same requests")
	assert.Equal(t, goCalls, transcript(t, log), "the same helper calls with the same input")
}
