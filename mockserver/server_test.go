package mockserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandlerMountsInAnotherServer(t *testing.T) {
	srv, err := NewUnstarted(DefaultConfig())
	require.NoError(t, err)
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	r := get(t, ts.URL+"/v2/team/app/tags/list", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `realm="`+ts.URL+`/registry/token"`, "the realm follows the origin reached")
	assert.Contains(t, get(t, ts.URL+"/", "").body, "reauth mock server "+ts.URL)
	assert.Equal(t, http.StatusOK, get(t, ts.URL+"/basic/", basic("alice", "wonderland")).status)
	assert.Len(t, srv.Requests(), 3)
	assert.Empty(t, srv.URL(), "not started")
	assert.Error(t, func() error { s := New(DefaultConfig()); defer s.Close(); return s.Start() }(), "a second Start")
}

func TestClocks(t *testing.T) {
	srv := New(DefaultConfig())
	defer srv.Close()
	assert.WithinDuration(t, time.Now(), srv.Clock().Now(), time.Hour, "the system clock by default")

	c := NewManualClock(testStart)
	c.Advance(time.Minute)
	assert.Equal(t, testStart.Add(time.Minute), c.Now())
	c.Set(testStart)
	assert.Equal(t, testStart, c.Now())
}

// TestEveryScenarioPathWorksWithAndWithoutTheTrailingSlash: a user who types
// /bearer or /digest/sha-256 reaches the scenario itself, not a 307 to it
// or a 404, and gets what the listed path gets.
func TestEveryScenarioPathWorksWithAndWithoutTheTrailingSlash(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Status.FailFirst = -1 }) // /status/…: always the same answer
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(t *testing.T, path, authorization string) (int, http.Header, Request) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
		require.NoError(t, err)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		reqs := srv.Requests()
		require.NotEmpty(t, reqs)
		return resp.StatusCode, resp.Header, reqs[len(reqs)-1]
	}
	// withoutNonces is what the challenges say apart from their nonces
	// (compared as text: /malformed/ sends fields that do not parse).
	nonces := regexp.MustCompile(`(nonce|opaque)="[^"]*"`)
	withoutNonces := func(h http.Header) []string {
		var out []string
		for _, v := range h.Values("WWW-Authenticate") {
			out = append(out, nonces.ReplaceAllString(v, "$1=…"))
		}
		return out
	}
	tested := 0
	for _, ms := range srv.Scenarios() {
		if !strings.HasPrefix(ms.Path, "/") {
			continue // the forward proxy has no path of its own
		}
		for _, listed := range strings.Split(ms.Path, " and ") {
			other := listed + "/"
			if strings.HasSuffix(listed, "/") {
				other = strings.TrimSuffix(listed, "/")
			}
			t.Run(listed, func(t *testing.T) {
				for _, cred := range []string{"", basic("alice", "wonderland")} {
					wantStatus, wantHeader, wantLog := do(t, listed, cred)
					status, header, log := do(t, other, cred)
					assert.False(t, status >= 300 && status < 400, "%s redirects (%d) to %q", other, status, header.Get("Location"))
					assert.NotEqual(t, http.StatusNotFound, status, other)
					assert.Equal(t, wantStatus, status, "%s and %s answer alike", listed, other)
					assert.Equal(t, ms.Name, log.Scenario, "%s is served by scenario %s", other, ms.Name)
					assert.Equal(t, wantLog.Scenario, log.Scenario)
					assert.Equal(t, other, log.Path, "the log shows the path as it was sent")
					assert.Equal(t, withoutNonces(wantHeader), withoutNonces(header))
				}
			})
			tested++
		}
	}
	assert.Greater(t, tested, 20, "every scenario path was tried")
}

// TestDigestAnswersAPathWithoutItsTrailingSlash: the uri of the answer is
// the request-target as sent, slash or not (RFC 7616 §3.4).
func TestDigestAnswersAPathWithoutItsTrailingSlash(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, path := range []string{"/digest", "/digest/sha-256", "/digest/md5-sess"} {
		ch := firstChallenge(t, srv, path)
		d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: path}
		assert.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status, path)
	}
}
