package main

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func newTestEnv(t *testing.T) *env {
	t.Helper()
	e, err := newEnv()
	require.NoError(t, err)
	t.Cleanup(e.close)
	return e
}

// TestTourOutcomesAreAsDesigned runs the tour once: every row that reauth can
// run must end as DESIGN.md says, and the table must say so.
func TestTourOutcomesAreAsDesigned(t *testing.T) {
	e := newTestEnv(t)
	list := scenarios()
	results := e.runAll(list)
	require.Len(t, results, len(list))
	for _, r := range results {
		t.Run(r.sc.label(), func(t *testing.T) {
			if r.pending {
				assert.NotEmpty(t, r.sc.needs, "a row without credentials must say what it needs")
				return
			}
			assert.Empty(t, r.differs)
			assert.Len(t, r.calls, len(r.sc.want.requests))
		})
	}

	var out bytes.Buffer
	sum, err := writeTable(&out, e.url, results)
	require.NoError(t, err)
	assert.Equal(t, 0, sum.differ, out.String())
	assert.Equal(t, len(list), sum.total)
	assert.Equal(t, sum.total, sum.asDesigned+sum.pending+sum.differ)
	assert.Contains(t, out.String(), "scenarios: ")
	assert.True(t, strings.HasSuffix(out.String(), " 0 differ\n"), "the last line counts the rows that differ")
	for _, sc := range list {
		assert.Contains(t, out.String(), sc.label())
	}
	assertNoSecrets(t, out.String())
}

// assertNoSecrets fails if any credential of the mock's default
// configuration, or any token it issued, is in s.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{
		alicePassword, bobPassword, readToken, "mock-token-admin", oauth2Secret, "not-the-password",
		base64.StdEncoding.EncodeToString([]byte(alice + ":" + alicePassword)),
		base64.StdEncoding.EncodeToString([]byte(bob + ":" + bobPassword)),
		"mock-at-", "mock-rt-", "mock-reg-", "mock-rrt-",
	} {
		assert.NotContains(t, s, secret)
	}
}

// TestTourCountsAnOutcomeThatDiffers makes sure the check is not vacuous:
// rows whose expectation is wrong are reported and counted.
func TestTourCountsAnOutcomeThatDiffers(t *testing.T) {
	e := newTestEnv(t)
	wrong := []scenario{
		{variant: "want one request", path: "/basic/", creds: basic(alice, alicePassword), want: succeeds(http.StatusOK, 1)},
		{variant: "want 403", path: "/basic/", creds: basic(alice, "not-the-password"), want: fails(2, reauth.ErrForbidden)},
		{variant: "want an error", path: "/hidden/", creds: basic(bob, bobPassword), want: fails(2, reauth.ErrForbidden)},
		{variant: "want MD5", path: "/digest/", creds: digest(alice, alicePassword),
			want: succeeds(http.StatusOK, 2).and(digestAnswered("MD5", "auth"))},
	}
	results := e.runAll(wrong)
	for _, r := range results {
		assert.NotEmpty(t, r.differs, r.sc.label())
	}
	var out bytes.Buffer
	sum, err := writeTable(&out, e.url, results)
	require.NoError(t, err)
	assert.Equal(t, summary{total: 4, differ: 4}, sum)
	assert.Contains(t, out.String(), "DIFFERS /basic/ want one request: call 1: the server saw 2 request(s), DESIGN.md says 1")
	assert.Contains(t, out.String(), "DIFFERS /digest/ want MD5: answered with algorithm=SHA-256 qop=auth, want MD5 auth")
	assert.True(t, strings.HasSuffix(out.String(), "4 scenarios: 0 as DESIGN.md says, 0 not yet supported, 4 differ\n"))
}

func TestTourChecksTheInvariantsOnEveryRow(t *testing.T) {
	refusedTwice := []call{{requests: []mockserver.Request{
		{Credential: "Basic alice:*** #1a2b3c4d", Status: http.StatusUnauthorized},
		{Credential: "Basic alice:*** #1a2b3c4d", Status: http.StatusUnauthorized},
	}}}
	assert.Len(t, invariants(refusedTwice), 1, "invariant 2")

	retriedTwice := []call{{events: []reauth.Event{{Kind: reauth.EventRetry}, {Kind: reauth.EventRetry}}}}
	assert.Len(t, invariants(retriedTwice), 1, "invariant 1")

	proxyThenOrigin := []call{{
		events: []reauth.Event{{Kind: reauth.EventRetry, Proxy: true}, {Kind: reauth.EventRetry}},
		requests: []mockserver.Request{
			{Status: http.StatusUnauthorized},
			{Credential: "Basic alice:*** #1a2b3c4d", Status: http.StatusOK},
		},
	}}
	assert.Empty(t, invariants(proxyThenOrigin), "one retry per challenge kind, new credentials")
}

// TestTourListsPendingRowsWithoutRunningThem: rows whose credentials are not
// in reauth yet send nothing and are counted apart.
func TestTourListsPendingRowsWithoutRunningThem(t *testing.T) {
	e := newTestEnv(t)
	pending := []scenario{{variant: "pending", path: "/oauth2/resource", needs: "reauth.OAuth2", want: succeeds(http.StatusOK, 1)}}
	results := e.runAll(pending)
	require.Len(t, results, 1)
	assert.True(t, results[0].pending)
	assert.Empty(t, e.srv.RequestsTo("/oauth2/"))
	var out bytes.Buffer
	sum, err := writeTable(&out, e.url, results)
	require.NoError(t, err)
	assert.Equal(t, summary{total: 1, pending: 1}, sum)
	assert.Contains(t, out.String(), "needs reauth.OAuth2")
}

// tokenEndpoints are mock scenarios that credentials reach on their own, not
// resources a row requests.
var tokenEndpoints = map[string]bool{"/oauth2/token": true, "/oauth2/revoke": true, "/registry/token": true}

// servedBelow are mock scenarios served on every path under them: the
// registry's repositories, and /malformed/, which is /malformed/unterminated/.
var servedBelow = map[string]bool{"/v2/": true, "/malformed/": true}

// TestTourCoversEveryMockScenario: the tour is the mock server's scenarios
// through reauth, all of them.
func TestTourCoversEveryMockScenario(t *testing.T) {
	e := newTestEnv(t)
	list := scenarios()
	for _, ms := range e.srv.Scenarios() {
		// "/malformed/ and /malformed/unterminated/" lists two paths.
		for _, path := range strings.Split(ms.Path, " and ") {
			if tokenEndpoints[path] {
				continue
			}
			covered := false
			for _, sc := range list {
				if sc.path == path || servedBelow[path] && strings.HasPrefix(sc.path, path) {
					covered = true
				}
			}
			assert.True(t, covered, "no tour row requests %s (%s)", path, ms.Name)
		}
	}
}

func TestTourLabelsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range scenarios() {
		assert.False(t, seen[sc.label()], "two rows are labelled %q", sc.label())
		seen[sc.label()] = true
	}
}
