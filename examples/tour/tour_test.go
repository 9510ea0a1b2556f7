package main

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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

	for _, verbose := range []bool{false, true} {
		var out bytes.Buffer
		sum, err := writeReport(&out, e.url, results, verbose)
		require.NoError(t, err)
		assert.Equal(t, 0, sum.differ, out.String())
		assert.Equal(t, len(list), sum.total)
		assert.Equal(t, sum.total, sum.asDesigned+sum.pending+sum.differ)
		assert.True(t, strings.HasSuffix(out.String(), " 0 differ\n"), "the last line counts the rows that differ")
		for _, r := range results {
			assert.Contains(t, out.String(), cut(r.sc.label(), labelWidth))
			assert.Contains(t, out.String(), r.sc.shows)
		}
		assertNoSecrets(t, out.String())
		if verbose {
			for _, r := range results {
				assert.Contains(t, out.String(), r.sc.label()+": "+verdict(r)+"\n")
				assert.Contains(t, out.String(), "  server asked  "+asked(r)+"\n")
				assert.Contains(t, out.String(), "  reauth did    "+did(r)+"\n")
				assert.Contains(t, out.String(), "  outcome       "+outcome(r)+"\n")
			}
		}
	}
}

// TestTourDefaultOutputFitsAHundredColumns runs the command as
// `go run ./examples/tour` does: no line is wider than 100 columns, and
// every scenario has a line with its verdict.
func TestTourDefaultOutputFitsAHundredColumns(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, cli(nil, &stdout, &stderr), stderr.String())
	widest := assertFits(t, stdout.String(), 100)
	t.Logf("widest line: %d columns", widest)
	lines := strings.Split(stdout.String(), "\n")
	for _, sc := range scenarios() {
		want := "as designed" // rows without credentials are not yet supported, and say so
		if sc.creds == nil {
			want = "unsupported"
		}
		found := slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, want+"  "+sc.label()+" ")
		})
		assert.True(t, found, "no line says %q is %s", sc.label(), want)
	}
	assert.Contains(t, stdout.String(), "-v")
	assert.NotContains(t, stdout.String(), "server asked", "the detail is for -v")
	assertNoSecrets(t, stdout.String())
}

// assertFits fails for each line of s wider than width columns (runes: the
// tour prints nothing wider than one column) and returns the widest.
func assertFits(t *testing.T, s string, width int) int {
	t.Helper()
	widest := 0
	for _, line := range strings.Split(s, "\n") {
		n := utf8.RuneCountInString(line)
		widest = max(widest, n)
		assert.LessOrEqual(t, n, width, "line of %d columns: %q", n, line)
	}
	return widest
}

// TestTourVerboseShowsTheDetail: -v adds what the server asked and what
// reauth sent, for every scenario.
func TestTourVerboseShowsTheDetail(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, cli([]string{"-v"}, &stdout, &stderr), stderr.String())
	s := stdout.String()
	assert.Equal(t, len(scenarios()), strings.Count(s, "\n  server asked  "))
	assert.Equal(t, len(scenarios()), strings.Count(s, "\n  reauth did    "))
	assert.Contains(t, s, "/digest/ x2: as designed\n")
	assert.Contains(t, s, "none 401, Digest 200 | Digest 200 [")
	assert.Contains(t, s, "403 ErrForbidden Bearer.Scope=admin")
	assertNoSecrets(t, s)
}

// TestTourHelpPrintsUsageWithoutRunning: -h prints the usage and exits 0;
// a flag it does not know exits 2. Neither runs the tour.
func TestTourHelpPrintsUsageWithoutRunning(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 0, cli([]string{arg}, &stdout, &stderr), arg)
		assert.Contains(t, stdout.String(), "Usage: go run ./examples/tour [-v]")
		assert.Contains(t, stdout.String(), "-v\t")
		assert.NotContains(t, stdout.String(), "scenarios:", "the tour did not run")
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, cli([]string{"-no-such-flag"}, &stdout, &stderr))
	assert.NotContains(t, stdout.String()+stderr.String(), "scenarios:")
	assert.Equal(t, 2, cli([]string{"extra"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `unexpected arguments ["extra"]`)
}

func TestWrapAndCut(t *testing.T) {
	assert.Equal(t, "ab…", cut("abcdef", 3))
	assert.Equal(t, "abc", cut("abc", 3))
	assert.Equal(t, "a §b", cut("a §b", 4), "runes, not bytes")
	assert.Equal(t, "one two\n  three", wrap("one two three", 8, "  "))
	assert.Equal(t, "    one\n    two", wrap("    one two", 10, "    "), "the first line keeps its indent")
	long := strings.Repeat("x", 25)
	for _, line := range strings.Split(wrap("a "+long, 10, "  "), "\n") {
		assert.LessOrEqual(t, utf8.RuneCountInString(line), 10, "a word longer than a line is cut")
	}
	assert.Equal(t, strings.Repeat("x", 25), strings.ReplaceAll(strings.ReplaceAll(wrap(long, 10, "  "), "\n", ""), " ", ""))
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
		{variant: "want MD5", path: "/digest/sha-256/", creds: digest(alice, alicePassword),
			want: succeeds(http.StatusOK, 2).and(digestAnswered("MD5", "auth"))},
	}
	results := e.runAll(wrong)
	for _, r := range results {
		assert.NotEmpty(t, r.differs, r.sc.label())
	}
	var out bytes.Buffer
	sum, err := writeReport(&out, e.url, results, true)
	require.NoError(t, err)
	assert.Equal(t, summary{total: 4, differ: 4}, sum)
	var short bytes.Buffer
	_, err = writeReport(&short, e.url, results, false)
	require.NoError(t, err)
	assertFits(t, short.String(), 100)
	assert.Equal(t, 4, strings.Count(short.String(), "\nDIFFERS  "), "the verdict column")
	assert.Contains(t, short.String(), "\nDIFFERS /digest/sha-256/ want MD5: answered with algorithm=SHA-256")
	assert.Contains(t, out.String(), "DIFFERS /basic/ want one request: call 1: the server saw 2 request(s), DESIGN.md says 1")
	assert.Contains(t, out.String(), "DIFFERS /digest/sha-256/ want MD5: answered with algorithm=SHA-256 qop=auth, want MD5 auth")
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

	stale := reauth.Challenge{Scheme: "Digest", Params: map[string]string{"stale": "true"}}
	challengeThenNonce := []call{{events: []reauth.Event{
		{Kind: reauth.EventChallenge}, {Kind: reauth.EventRetry},
		{Kind: reauth.EventChallenge, Challenges: []reauth.Challenge{stale}}, {Kind: reauth.EventRetry},
	}}}
	assert.Empty(t, invariants(challengeThenNonce), "a challenge retry, then a fresh-nonce retry: within the ceiling")
	nonceTwice := []call{{events: []reauth.Event{
		{Kind: reauth.EventChallenge, Challenges: []reauth.Challenge{stale}}, {Kind: reauth.EventRetry},
		{Kind: reauth.EventChallenge, Challenges: []reauth.Challenge{stale}}, {Kind: reauth.EventRetry},
	}}}
	assert.Len(t, invariants(nonceTwice), 1, "two fresh-nonce retries on one leg")

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
	for _, verbose := range []bool{false, true} {
		var out bytes.Buffer
		sum, err := writeReport(&out, e.url, results, verbose)
		require.NoError(t, err)
		assert.Equal(t, summary{total: 1, pending: 1}, sum)
		assert.Contains(t, out.String(), "needs reauth.OAuth2")
		assert.Contains(t, out.String(), "unsupported")
	}
}

// tokenEndpoints are mock scenarios that credentials reach on their own, not
// resources a row requests.
var tokenEndpoints = map[string]bool{"/oauth2/token": true, "/oauth2/revoke": true, "/registry/token": true,
	"/dpop/token": true, "/dpop/nonce/token": true}

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

// TestTourExpectsTheStrongestDigestOffered: the /digest/ row follows what
// the mock offers, and catches an answer that is not the strongest.
func TestTourExpectsTheStrongestDigestOffered(t *testing.T) {
	offered := []wireResponse{{status: http.StatusUnauthorized, challenges: []reauth.Challenge{
		{Scheme: "Digest", Params: map[string]string{"algorithm": "MD5"}},
		{Scheme: "Digest", Params: map[string]string{"algorithm": "SHA-256"}},
		{Scheme: "Basic"},
	}}}
	answered := func(alg string) []call {
		return []call{{wire: offered, requests: []mockserver.Request{
			{Scheme: "Digest", Credential: `Digest username="alice" algorithm=` + alg + ` qop=auth nc=00000001 nonce=#5e6f7a8b #1a2b3c4d`},
		}}}
	}
	check := digestAnsweredStrongest("auth")
	assert.Empty(t, check(answered("SHA-256")))
	assert.Equal(t, "answered with algorithm=MD5 qop=auth, want SHA-256 auth", check(answered("MD5")))
	assert.NotEmpty(t, check([]call{{wire: []wireResponse{{status: http.StatusUnauthorized}}}}), "no Digest offered")
}
