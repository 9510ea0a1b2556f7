//go:build integration

// Package integration_test runs reauth against real Apache httpd and nginx
// servers, configured and started by scripts/integration-servers.sh. See
// README.md in this directory for how to run it.
package integration_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

// The one user the servers know (scripts/integration-servers.sh).
const (
	user          = "alice"
	password      = "alice-secret-1"
	wrongPassword = "not-alice-secret"
)

// staleNonceWait is longer than the 2 s AuthDigestNonceLifetime of
// /digest-stale/, so a nonce received before it has expired after it.
const staleNonceWait = 3 * time.Second

const howToStart = `start the servers first:
    scripts/integration.sh                     (installs, starts, runs these tests, stops)
or by hand:
    dir=$(mktemp -d); scripts/integration-servers.sh start "$dir"
    set -a; . "$dir/env"; set +a
    go test -race -count=1 -tags integration ./integration/...
    scripts/integration-servers.sh stop "$dir"`

type servers struct {
	apache, nginx string // origins: http://127.0.0.1:port
}

// startedServers reads the origins scripts/integration-servers.sh wrote to
// DIR/env. Without them the test fails: a skipped integration test would
// report success for behaviour nobody checked.
func startedServers(t *testing.T) servers {
	t.Helper()
	return servers{
		apache: loopbackOrigin(t, "REAUTH_APACHE_URL"),
		nginx:  loopbackOrigin(t, "REAUTH_NGINX_URL"),
	}
}

func loopbackOrigin(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set; %s", name, howToStart)
	}
	u, err := url.Parse(v)
	require.NoError(t, err, "%s is not a URL", name)
	ip := net.ParseIP(u.Hostname())
	require.True(t, u.Scheme == "http" && ip != nil && ip.IsLoopback() && u.Path == "",
		"%s=%q: want http://127.0.0.1:PORT (the tests only talk to loopback)", name, v)
	return v
}

// exchange is one request the Transport sent to the server and the answer.
type exchange struct {
	path       string
	authID     int    // 0: no Authorization; equal ids: equal Authorization values
	authScheme string // "Basic", "Digest", …
	status     int    // 0: the request failed
	challenge  string // WWW-Authenticate as sent by the server (nonces are not secret)
}

func (e exchange) String() string {
	auth := "none"
	if e.authID != 0 {
		auth = fmt.Sprintf("%s#%d", e.authScheme, e.authID)
	}
	s := fmt.Sprintf("GET %s auth=%s -> %d", e.path, auth, e.status)
	if e.challenge != "" {
		s += " [" + e.challenge + "]"
	}
	return s
}

// recorder is the Transport's Base: it sees every request the Transport
// makes, retries included. It keeps Authorization values only as numbers, so
// no credential can reach the test output.
type recorder struct {
	base http.RoundTripper

	mu        sync.Mutex
	ids       map[string]int
	exchanges []exchange
}

func newRecorder(t *testing.T) *recorder {
	base := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}
	t.Cleanup(base.CloseIdleConnections)
	return &recorder{base: base, ids: map[string]int{}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	e := exchange{path: req.URL.Path}
	if auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		r.mu.Lock()
		id, ok := r.ids[auth]
		if !ok {
			id = len(r.ids) + 1
			r.ids[auth] = id
		}
		r.mu.Unlock()
		e.authID, e.authScheme = id, scheme
	}
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		e.status = resp.StatusCode
		e.challenge = strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
	}
	r.mu.Lock()
	r.exchanges = append(r.exchanges, e)
	r.mu.Unlock()
	return resp, err
}

// take returns the exchanges since the last take.
func (r *recorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	ex := r.exchanges
	r.exchanges = nil
	return ex
}

func newClient(rec *recorder, creds reauth.Credentials, origin string) *http.Client {
	return &http.Client{
		Transport: &reauth.Transport{Base: rec, Credentials: creds, Origins: []string{origin}},
		Timeout:   30 * time.Second,
	}
}

// get makes one call through the client and returns the body of a 200.
func get(client *http.Client, rawURL string) (status int, body string, err error) {
	resp, err := client.Get(rawURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), err
}

func statuses(ex []exchange) []int {
	out := make([]int, len(ex))
	for i, e := range ex {
		out[i] = e.status
	}
	return out
}

func describe(ex []exchange) string {
	lines := make([]string, len(ex))
	for i, e := range ex {
		lines[i] = "  " + e.String()
	}
	return "requests sent:\n" + strings.Join(lines, "\n")
}

// assertNoRepeatedAuthorization checks DESIGN.md, invariant 2: within one
// call, credentials that were sent once are never sent again.
func assertNoRepeatedAuthorization(t *testing.T, ex []exchange) {
	t.Helper()
	seen := map[int]bool{}
	for _, e := range ex {
		if e.authID == 0 {
			continue
		}
		assert.False(t, seen[e.authID], "the same Authorization value was sent twice in one call\n%s", describe(ex))
		seen[e.authID] = true
	}
}

// TestSteadyStateIsOneRequestPerCall: once a server has challenged, every
// later request to its protection space carries the credentials up front
// (Basic: the same value; Digest: the nonce with the next nonce count), so
// only the first call pays for the challenge.
func TestSteadyStateIsOneRequestPerCall(t *testing.T) {
	srv := startedServers(t)
	const calls = 10
	tests := []struct {
		name   string
		origin string
		path   string
		creds  reauth.Credentials
		scheme string
	}{
		{"apache basic", srv.apache, "/basic/", reauth.Basic(user, password), "Basic"},
		{"apache digest", srv.apache, "/digest/", reauth.Digest(user, password), "Digest"},
		{"nginx basic", srv.nginx, "/basic/", reauth.Basic(user, password), "Basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			client := newClient(rec, tt.creds, tt.origin)
			total := 0
			for i := range calls {
				status, body, err := get(client, tt.origin+tt.path)
				ex := rec.take()
				require.NoError(t, err, "call %d\n%s", i+1, describe(ex))
				assert.Equal(t, http.StatusOK, status, "call %d\n%s", i+1, describe(ex))
				assert.Equal(t, "ok\n", body, "call %d", i+1)
				assertNoRepeatedAuthorization(t, ex)
				require.NotEmpty(t, ex, "call %d sent no request", i+1)
				last := ex[len(ex)-1]
				assert.Equal(t, tt.scheme, last.authScheme, "call %d was answered with the wrong scheme\n%s", i+1, describe(ex))
				if i == 0 {
					assert.LessOrEqual(t, len(ex), 2, "first call: one challenge and one answer at most\n%s", describe(ex))
				} else {
					assert.Len(t, ex, 1, "call %d: credentials should go up front\n%s", i+1, describe(ex))
				}
				total += len(ex)
			}
			assert.LessOrEqual(t, total, calls+1, "the first challenge plus one request per call")
			t.Logf("%s: %d requests for %d calls (%.2f per call)", tt.name, total, calls, float64(total)/calls)
		})
	}
}

// TestRefusedCredentialsAreRetriedOnce: when the credentials sent are
// refused with a new challenge, the Transport has nothing different to offer
// and stops after one retry with *UnauthorizedError (RFC 9110 §15.5.2).
func TestRefusedCredentialsAreRetriedOnce(t *testing.T) {
	srv := startedServers(t)
	tests := []struct {
		name   string
		origin string
		path   string
		creds  reauth.Credentials
		scheme string
		realm  string
	}{
		{"apache basic wrong password", srv.apache, "/basic/", reauth.Basic(user, wrongPassword), "Basic", "reauth basic"},
		{"apache digest wrong password", srv.apache, "/digest/", reauth.Digest(user, wrongPassword), "Digest", "reauth digest"},
		{"nginx basic wrong password", srv.nginx, "/basic/", reauth.Basic(user, wrongPassword), "Basic", "reauth nginx"},
		// Apache's default when authorization fails: a 401 that challenges again.
		{"apache group re-challenge", srv.apache, "/group-rechallenge/", reauth.Basic(user, password), "Basic", "reauth group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			client := newClient(rec, tt.creds, tt.origin)

			_, _, err := get(client, tt.origin+tt.path)
			ex := rec.take()

			require.Error(t, err, describe(ex))
			var unauthorized *reauth.UnauthorizedError
			require.ErrorAs(t, err, &unauthorized)
			assert.Equal(t, http.StatusUnauthorized, unauthorized.StatusCode)
			assert.ErrorIs(t, err, reauth.ErrUnauthorized)
			assert.NotErrorIs(t, err, reauth.ErrForbidden)
			assert.True(t, hasChallenge(unauthorized.Challenges, tt.scheme, tt.realm),
				"the error should carry the server's %s challenge for realm %q: %v", tt.scheme, tt.realm, unauthorized.Challenges)
			assert.NotContains(t, err.Error(), password)
			assert.NotContains(t, err.Error(), wrongPassword)

			assert.Equal(t, []int{http.StatusUnauthorized, http.StatusUnauthorized}, statuses(ex),
				"one challenge and one retry\n%s", describe(ex))
			if assert.Len(t, ex, 2, describe(ex)) {
				assert.Zero(t, ex[0].authID, "nothing is sent before the first challenge\n%s", describe(ex))
				assert.Equal(t, tt.scheme, ex[1].authScheme, describe(ex))
			}
			assertNoRepeatedAuthorization(t, ex)
		})
	}
}

func hasChallenge(chs []reauth.Challenge, scheme, realm string) bool {
	for _, c := range chs {
		if strings.EqualFold(c.Scheme, scheme) && c.Params["realm"] == realm {
			return true
		}
	}
	return false
}

// TestStaleDigestNonceIsAnsweredWithTheNewNonce: a request whose nonce has
// expired gets a 401 with stale=true; the Transport retries once with the
// new nonce and the same password, without giving up (RFC 7616 §3.3).
func TestStaleDigestNonceIsAnsweredWithTheNewNonce(t *testing.T) {
	srv := startedServers(t)
	rec := newRecorder(t)
	client := newClient(rec, reauth.Digest(user, password), srv.apache)
	target := srv.apache + "/digest-stale/"

	status, _, err := get(client, target)
	ex := rec.take()
	require.NoError(t, err, describe(ex))
	require.Equal(t, http.StatusOK, status, describe(ex))

	// Not a timing assertion: the wait only lets the nonce expire, and the
	// check below that the server said stale=true proves it did.
	time.Sleep(staleNonceWait)

	status, body, err := get(client, target)
	ex = rec.take()
	require.NoError(t, err, describe(ex))
	assert.Equal(t, http.StatusOK, status, describe(ex))
	assert.Equal(t, "ok\n", body)
	require.Len(t, ex, 2, "the expired nonce up front, then one retry with the new one\n%s", describe(ex))
	assert.Equal(t, "Digest", ex[0].authScheme, "the known nonce goes up front\n%s", describe(ex))
	assert.Equal(t, http.StatusUnauthorized, ex[0].status, describe(ex))
	assert.Contains(t, strings.ToLower(ex[0].challenge), "stale=true", "Apache should have called the nonce stale\n%s", describe(ex))
	assert.Equal(t, http.StatusOK, ex[1].status, describe(ex))
	assertNoRepeatedAuthorization(t, ex)
}

// TestForbiddenIsFinal: a 403 means the server understood who is asking and
// refuses; the Transport returns *ForbiddenError at once and never retries
// (RFC 9110 §15.5.4).
func TestForbiddenIsFinal(t *testing.T) {
	srv := startedServers(t)
	tests := []struct {
		name   string
		origin string
		path   string
		want   []int // statuses of the requests sent, in order
	}{
		// alice authenticates, is not in group admins, and
		// AuthzSendForbiddenOnFailure turns that into a 403.
		{"apache group forbidden", srv.apache, "/group-forbidden/", []int{http.StatusUnauthorized, http.StatusForbidden}},
		// No challenge at all: the credentials are never sent.
		{"nginx forbidden", srv.nginx, "/forbidden/", []int{http.StatusForbidden}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			client := newClient(rec, reauth.Basic(user, password), tt.origin)

			_, _, err := get(client, tt.origin+tt.path)
			ex := rec.take()

			require.Error(t, err, describe(ex))
			assert.ErrorIs(t, err, reauth.ErrForbidden)
			assert.NotErrorIs(t, err, reauth.ErrUnauthorized)
			var forbidden *reauth.ForbiddenError
			if assert.ErrorAs(t, err, &forbidden) {
				assert.Equal(t, http.StatusForbidden, forbidden.StatusCode)
			}
			var urlErr *url.Error
			assert.True(t, errors.As(err, &urlErr), "http.Client wraps the Transport's error in *url.Error")
			assert.NotContains(t, err.Error(), password)
			assert.Equal(t, tt.want, statuses(ex), "nothing is sent after the 403\n%s", describe(ex))
			assertNoRepeatedAuthorization(t, ex)
		})
	}
}
