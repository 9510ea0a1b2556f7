//go:build unix

package reauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGOAUTHSpecErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"off; netrc":       "cannot be combined",
		"netrc;;netrc":     "entry 2 is empty",
		"git relative/dir": "absolute path",
		"git /nonexistent": "not a directory",
		"cmd 'unclosed":    "no closing quote",
	} {
		_, err := GOAUTHKeychain(spec)
		assert.ErrorContains(t, err, want, spec)
	}
	kc, err := GOAUTHKeychain("off")
	require.NoError(t, err)
	c, err := kc.Resolve(context.Background(), "https://h")
	require.NoError(t, err)
	assert.Nil(t, c, "off: no credentials")
}

func TestGOAUTHOutputAsDocumented(t *testing.T) {
	// The example of "go help goauth".
	out := "https://example.com\nhttps://example.net/api/\n\nAuthorization: Basic dG9rZW4=\n\nhttps://another-example.org/\n\nExample: Data\n\n"
	sets, err := parseGOAUTHOutput([]byte(out))
	require.NoError(t, err)
	require.Len(t, sets, 3)
	assert.Equal(t, "https://example.com", sets[0].prefix)
	assert.Equal(t, "https://example.net/api/", sets[1].prefix)
	assert.Equal(t, "Basic dG9rZW4=", sets[1].header.Get("Authorization"))
	assert.Equal(t, "Data", sets[2].header.Get("Example"))

	for name, bad := range map[string]string{
		"no blank after URLs":    "https://a\n",
		"no blank after headers": "https://a\n\nAuthorization: s3cr3t\n",
		"http URL":               "http://a\n\nAuthorization: s3cr3t\n\n",
		"bad header":             "https://a\n\nAuthorization s3cr3t\n\n",
	} {
		_, err := parseGOAUTHOutput([]byte(bad))
		require.Error(t, err, name)
		assert.NotContains(t, err.Error(), "s3cr3t", name)
	}
}

func TestGOAUTHLongestPrefixWins(t *testing.T) {
	e := &goauthEngine{prefixes: map[string]http.Header{}}
	e.store("https://h/a/", http.Header{"Authorization": {"A"}})
	e.store("https://h/a/b", http.Header{"Authorization": {"AB"}})
	e.store("https://h", http.Header{"Authorization": {"H"}})
	for u, want := range map[string]string{
		"https://h/a/b/c": "AB", "https://h/a/bc": "A", "https://h/x": "H",
		"https://other/a": "", "https://h.evil/a": "", "http://h/a": "",
		"https://h:8443/a": "",
	} {
		p, err := url.Parse(u)
		require.NoError(t, err)
		assert.Equal(t, want, e.lookup(p).Get("Authorization"), u)
	}
}

// goauthHelper writes a GOAUTH command that logs its arguments and stdin to
// log and prints first before the first request, then after a refusal.
func goauthHelper(t *testing.T, first, after string) (cmd, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	script := filepath.Join(dir, "helper")
	body := "#!/bin/sh\n" +
		"echo \"call args=$#:$*\" >> " + log + "\n" +
		"cat >> " + log + "\n" +
		"echo 'secret on stderr' >&2\n" +
		"if [ $# -eq 0 ]; then printf '%s' '" + first + "'; else printf '%s' '" + after + "'; fi\n"
	require.NoError(t, os.WriteFile(script, []byte(body), 0o700))
	return script, log
}

func TestGOAUTHCommandProtocol(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch {
		case strings.HasPrefix(r.URL.Path, "/public"):
			assert.Empty(t, r.Header.Get("Authorization"), "fields only go under their prefix")
		case r.Header.Get("Authorization") == "Bearer fresh":
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	first := srv.URL + "/private/\n\nAuthorization: Bearer stale\n\n"
	after := srv.URL + "/private/\n\nAuthorization: Bearer fresh\n\n"
	cmd, log := goauthHelper(t, first, after)

	kc, err := GOAUTHKeychain(cmd)
	require.NoError(t, err)
	c, err := kc.Resolve(context.Background(), srv.URL)
	require.NoError(t, err)
	require.NotNil(t, c)
	client := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Credentials: c, Origins: []string{srv.URL}}}

	resp, err := client.Get(srv.URL + "/private/mod")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = client.Get(srv.URL + "/public/mod")
	require.NoError(t, err)
	resp.Body.Close()

	got, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "call args=0:\n"+
		"call args=1:"+srv.URL+"/private/mod\n"+
		"HTTP/1.1 401 Unauthorized\nContent-Length: 0\nWww-Authenticate: Bearer realm=\"x\"\n\n", dateless(string(got)))
}

// dateless drops the Date line of the recorded response.
func dateless(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "Date: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestGOAUTHHelperFailureHidesStderr(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "helper")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho 's3cr3t' >&2\nexit 3\n"), 0o700))
	e, err := parseGOAUTH(script)
	require.NoError(t, err)
	err = e.run(context.Background(), "https://h/x", []byte("HTTP/1.1 401 Unauthorized\n\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited with status 3")
	assert.NotContains(t, err.Error(), "s3cr3t")

	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nyes\n"), 0o700))
	err = e.run(context.Background(), "", nil)
	assert.ErrorContains(t, err, "printed more than")
}

func TestGOAUTHNetrcAsTheGoCommand(t *testing.T) {
	path := writeNetrc(t, "machine h login u password p\nmachine h2 login only\ndefault\nlogin d password dp\nmachine h3 login x password y\n")
	t.Setenv("NETRC", path)
	e, err := parseGOAUTH("netrc")
	require.NoError(t, err)
	require.NoError(t, e.run(context.Background(), "", nil))
	for u, want := range map[string]string{"https://h/m": basicFieldValue("u", "p"), "https://h2/m": "", "https://h3/m": ""} {
		p, err := url.Parse(u)
		require.NoError(t, err)
		assert.Equal(t, want, e.lookup(p).Get("Authorization"), u)
	}
}

func TestGOAUTHEarlierEntryWins(t *testing.T) {
	first, _ := goauthHelper(t, "https://h/\n\nAuthorization: Bearer first\n\n", "")
	second, _ := goauthHelper(t, "https://h/\n\nAuthorization: Bearer second\n\nhttps://h/only2/\n\nAuthorization: Bearer only2\n\n", "")
	e, err := parseGOAUTH(first + ";" + second)
	require.NoError(t, err)
	require.NoError(t, e.run(context.Background(), "", nil))
	for u, want := range map[string]string{"https://h/x": "Bearer first", "https://h/only2/x": "Bearer only2"} {
		p, err := url.Parse(u)
		require.NoError(t, err)
		assert.Equal(t, want, e.lookup(p).Get("Authorization"), u)
	}
}

func TestGOAUTHHelperTimeout(t *testing.T) {
	script := filepath.Join(t.TempDir(), "helper")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o700))
	e, err := parseGOAUTH(script)
	require.NoError(t, err)
	e.timeout = 100 * time.Millisecond
	err = e.run(context.Background(), "", nil)
	assert.ErrorContains(t, err, "did not finish within 100ms")
}

// GOAUTH unset is the go command's default, netrc.
func TestGOAUTHUnsetMeansNetrc(t *testing.T) {
	t.Setenv("NETRC", writeNetrc(t, "machine h login u password p\n"))
	kc, err := GOAUTHKeychain(" ")
	require.NoError(t, err)
	e := kc.(*goauthKeychain).e
	require.NoError(t, e.run(context.Background(), "", nil))
	u, err := url.Parse("https://h/m")
	require.NoError(t, err)
	assert.True(t, e.lookup(u).Get("Authorization") == basicFieldValue("u", "p"), "the netrc login") // value not printed
}
