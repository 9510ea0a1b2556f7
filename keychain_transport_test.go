//go:build unix

package reauth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headerLog records the Authorization (and X-Token) of each request a
// server gets, by path.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (l *headerLog) add(key, v string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string][]string{}
	}
	l.seen[key] = append(l.seen[key], v)
}

func (l *headerLog) get(key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen[key]...)
}

func netrcKeychainOf(t *testing.T, body string) Keychain {
	t.Helper()
	kc, err := NetrcKeychain(writeNetrc(t, body))
	require.NoError(t, err)
	return kc
}

func statusOf(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Two origins with their own .netrc entries each get their own login only;
// a redirect from one to the other carries the target's, never the first's.
func TestKeychainEachOriginGetsItsOwn(t *testing.T) {
	var log headerLog
	mk := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.add(name+r.URL.Path, r.Header.Get("Authorization"))
		}))
	}
	a, b := mk("a"), mk("b")
	defer a.Close()
	defer b.Close()
	// b is reached as localhost: .netrc names hosts, not ports.
	bURL := strings.Replace(b.URL, "127.0.0.1", "localhost", 1)
	kc := netrcKeychainOf(t, "machine 127.0.0.1 login ua password pa\nmachine localhost login ub password pb\n")
	c := &http.Client{Transport: &Transport{Keychain: kc}}

	require.Equal(t, http.StatusOK, statusOf(t, c, a.URL+"/x"))
	require.Equal(t, http.StatusOK, statusOf(t, c, bURL+"/x"))
	assert.Equal(t, []string{basicFieldValue("ua", "pa")}, log.get("a/x"))
	assert.Equal(t, []string{basicFieldValue("ub", "pb")}, log.get("b/x"))
}

func TestKeychainRedirectToAnotherOriginGetsNone(t *testing.T) {
	var log headerLog
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add("b", r.Header.Get("Authorization"))
	}))
	defer b.Close()
	bURL := strings.Replace(b.URL, "127.0.0.1", "localhost", 1)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add("a", r.Header.Get("Authorization"))
		http.Redirect(w, r, bURL+"/landed", http.StatusFound)
	}))
	defer a.Close()
	kc := netrcKeychainOf(t, "machine 127.0.0.1 login ua password pa\n")
	c := &http.Client{Transport: &Transport{Keychain: kc}}

	require.Equal(t, http.StatusOK, statusOf(t, c, a.URL+"/start"))
	assert.Equal(t, []string{basicFieldValue("ua", "pa")}, log.get("a"))
	assert.Equal(t, []string{""}, log.get("b"), "the redirect target gets no credentials")
}

// resolvingKeychain resolves c for every origin and counts its calls.
type resolvingKeychain struct {
	c     func() Credentials
	err   error
	calls atomic.Int32
}

func (k *resolvingKeychain) Resolve(context.Context, string) (Credentials, error) {
	k.calls.Add(1)
	if k.err != nil {
		return nil, k.err
	}
	if k.c == nil {
		return nil, nil
	}
	return k.c(), nil
}

// Resolved once per origin; after a final refusal the next request
// resolves again, and gets the keychain's new credentials.
func TestKeychainResolvesAgainAfterRefusal(t *testing.T) {
	var good atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if good.Load() && r.Header.Get("Authorization") == basicFieldValue("u", "new") {
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	pass := "old"
	var mu sync.Mutex
	kc := &resolvingKeychain{c: func() Credentials {
		mu.Lock()
		defer mu.Unlock()
		return Preemptive(Basic("u", pass))
	}}
	c := &http.Client{Transport: &Transport{Keychain: kc}}

	_, err := c.Get(srv.URL)
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, int32(1), kc.calls.Load())

	mu.Lock()
	pass = "new"
	mu.Unlock()
	good.Store(true)
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL))
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL))
	assert.Equal(t, int32(2), kc.calls.Load(), "resolved again after the refusal, then kept")
}

// A keychain with nothing for the origin leaves the request as it is: the
// caller's fields, and a 401 returned as a response.
func TestKeychainWithNothingLeavesTheRequest(t *testing.T) {
	var log headerLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add("auth", r.Header.Get("Authorization"))
		log.add("other", r.Header.Get("X-Caller"))
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	kc := Keychains(&resolvingKeychain{}, netrcKeychainOf(t, "machine other.example login u password p\n"))
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("X-Caller", "kept")
	resp, err := (&Transport{Keychain: kc}).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, []string{""}, log.get("auth"))
	assert.Equal(t, []string{"kept"}, log.get("other"))
}

// A keychain that fails fails the request, typed, without sending it.
func TestKeychainErrorFailsTheRequest(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	kc := &resolvingKeychain{err: errors.New("reauth: the helper exited with status 1")}
	_, err := (&http.Client{Transport: &Transport{Keychain: kc}}).Get(srv.URL)
	var ke *KeychainError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, canonicalOrigin(mustURL(t, srv.URL)), ke.Origin)
	assert.Equal(t, int32(0), calls.Load())
	assert.Equal(t, 1, strings.Count(err.Error(), "reauth: "), err.Error())
}

// Origins keep their Credentials: the keychain is not asked for them.
func TestKeychainNotAskedForBoundOrigins(t *testing.T) {
	srv, seen := recordingServer(t)
	kc := &resolvingKeychain{c: func() Credentials { return Preemptive(Basic("k", "k")) }}
	c := &http.Client{Transport: &Transport{Credentials: Preemptive(Basic("u", "p")), Origins: []string{srv.URL}, Keychain: kc}}
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL))
	assert.Equal(t, basicFieldValue("u", "p"), *seen.Load())
	assert.Equal(t, int32(0), kc.calls.Load())
}

// The .netrc's Basic goes over plain http to loopback only: the plain-http
// rule applies to keychain credentials unchanged.
func TestKeychainPlainHTTPRule(t *testing.T) {
	kc := netrcKeychainOf(t, "machine 192.0.2.1 login u password p\n")
	dialed := false
	base := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("not dialed")
	}}
	_, err := (&http.Client{Transport: &Transport{Base: base, Keychain: kc}}).Get("http://192.0.2.1/")
	require.ErrorIs(t, err, ErrInsecureCredentials)
	assert.False(t, dialed)
}

// GOAUTH's fields, several of them, go only under their prefix.
func TestKeychainGOAUTHFieldsUnderTheirPrefix(t *testing.T) {
	var log headerLog
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.URL.Path, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Token"))
	}))
	defer srv.Close()
	cmd, _ := goauthHelper(t, srv.URL+"/private/\n\nAuthorization: Bearer tok\nX-Token: two\n\n", "")
	kc, err := GOAUTHKeychain(cmd)
	require.NoError(t, err)
	c := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Keychain: kc}}
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL+"/private/mod"))
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL+"/privateer"))
	require.Equal(t, http.StatusOK, statusOf(t, c, srv.URL+"/public"))
	assert.Equal(t, []string{"Bearer tok|two"}, log.get("/private/mod"))
	assert.Equal(t, []string{"|"}, log.get("/privateer"))
	assert.Equal(t, []string{"|"}, log.get("/public"))
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// After a refusal the command runs again with the URL and the response as
// received (its real protocol); fields that did not change are not sent
// again: the refusal is final after one request.
func TestKeychainGOAUTHRefusalRerunsTheCommand(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	same := srv.URL + "/\n\nAuthorization: Bearer same\nX-Token: two\n\n"
	cmd, log := goauthHelper(t, same, same)
	kc, err := GOAUTHKeychain(cmd)
	require.NoError(t, err)
	c := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Keychain: kc}}
	_, err = c.Get(srv.URL + "/mod")
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, int32(1), calls.Load(), "the same fields are not sent again")
	got, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Contains(t, string(got), "call args=1:"+srv.URL+"/mod\nHTTP/2.0 401 Unauthorized\n")
}
