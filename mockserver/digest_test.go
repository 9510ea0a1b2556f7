package mockserver

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigestOffersAlgorithmsStrongestFirstWithOneNonce(t *testing.T) {
	tests := []struct {
		path, realm string
		algorithms  []string
	}{
		// /digest/ offers what common clients answer correctly; Debian
		// 12's curl 7.88 answers SHA-512-256 with a SHA-256 digest.
		{"/digest/", "digest@reauth.mock", []string{"SHA-256", "MD5"}},
		{"/digest/strongest/", "digest/strongest@reauth.mock", []string{"SHA-512-256", "SHA-256", "MD5"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			srv, _ := newTestServer(t)
			r := get(t, srv.URL()+tt.path, "")
			require.Equal(t, http.StatusUnauthorized, r.status)
			chs := challenges(t, r)
			require.Len(t, chs, len(tt.algorithms))
			for i, alg := range tt.algorithms {
				assert.True(t, chs[i].Is("Digest"))
				assert.Equal(t, alg, chs[i].Param("algorithm"))
				assert.Equal(t, tt.realm, chs[i].Param("realm"))
				assert.Equal(t, "auth, auth-int", chs[i].Param("qop"))
				assert.Equal(t, "UTF-8", chs[i].Param("charset"))
				assert.Equal(t, chs[0].Param("nonce"), chs[i].Param("nonce"), "one nonce for all challenges")
				assert.NotEmpty(t, chs[i].Param("opaque"))
				assert.Empty(t, chs[i].Param("stale"))
			}
		})
	}
}

func TestDigestListingSaysWhichCurlAnswers(t *testing.T) {
	srv, _ := newTestServer(t)
	notes := map[string]string{}
	for _, sc := range srv.Scenarios() {
		if sc.Name == "digest" {
			notes[sc.Path] = sc.Description
		}
	}
	for _, path := range []string{"/digest/", "/digest/md5/", "/digest/sha-256/", "/digest/userhash/"} {
		assert.Contains(t, notes[path], "curl --digest: any version", path)
	}
	for _, path := range []string{"/digest/strongest/", "/digest/sha-512-256/", "/digest/sha-512-256-sess/"} {
		assert.Contains(t, notes[path], "curl --digest: 8.7 or later", path)
	}

	first512, _ := newTestServer(t, func(c *Config) { c.Digest.Algorithms = []string{"SHA-512-256", "MD5"} })
	for _, sc := range first512.Scenarios() {
		if sc.Path == "/digest/" {
			assert.Contains(t, sc.Description, "8.7 or later", "curl answers the first challenge")
		}
	}
}

func TestDigestAlgorithmsOfferedAreConfiguration(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Digest.Algorithms = []string{"MD5-sess", "SHA-256"} })
	chs := challenges(t, get(t, srv.URL()+"/digest/", ""))
	require.Len(t, chs, 2)
	assert.Equal(t, "MD5-sess", chs[0].Param("algorithm"))
	assert.Equal(t, "SHA-256", chs[1].Param("algorithm"))

	_, err := NewUnstarted(Config{Digest: DigestConfig{Algorithms: []string{"SHA-1"}}})
	assert.ErrorContains(t, err, "SHA-1")
}

// Every variant accepts credentials computed from RFC 7616 by hand, and
// proves itself with a correct rspauth.
func TestDigestVariantsAcceptCorrectResponses(t *testing.T) {
	tests := []struct {
		path, method, body string
		pick               int // which challenge to answer
		d                  testDigest
	}{
		{path: "/digest/", pick: 0, d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/", pick: 1, d: testDigest{user: "bob", password: "builder"}},
		{path: "/digest/", pick: 0, method: http.MethodPost, body: "a=1", d: testDigest{user: "alice", password: "wonderland", qop: "auth-int"}},
		{path: "/digest/strongest/", pick: 0, d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/strongest/", pick: 1, d: testDigest{user: "bob", password: "builder"}},
		{path: "/digest/strongest/", pick: 2, d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/md5/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/md5-sess/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-256/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-256-sess/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-512-256/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-512-256-sess/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-256/deeper/file?x=1&y=2", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/auth-int/", method: http.MethodPut, body: `{"k":"v"}`, d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/auth-int/", method: http.MethodGet, d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/userhash/", d: testDigest{user: "Jäsøn Doe", password: "Secret, or not?", userhash: true}},
		{path: "/digest/userhash/", d: testDigest{user: "alice", password: "wonderland"}},
		{path: "/digest/sha-256/", d: testDigest{user: "Jäsøn Doe", password: "Secret, or not?", usernameStar: true}},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.d.user, func(t *testing.T) {
			srv, _ := newTestServer(t)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			first := send(t, method, srv.URL()+tt.path, "", nil, tt.body)
			require.Equal(t, http.StatusUnauthorized, first.status)
			ch := challenges(t, first)[tt.pick]
			d := tt.d
			d.method, d.uri, d.body, d.cnonce, d.nc = method, tt.path, tt.body, "c0ffee", 1
			r := send(t, method, srv.URL()+tt.path, d.authorization(ch), nil, tt.body)
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, tt.d.user, r.json(t)["user"])

			info, err := reauth.ParseChallenges("Digest " + r.header.Get("Authentication-Info"))
			require.NoError(t, err, "Authentication-Info has the auth-param grammar")
			_, wantRspauth := d.digest(ch, r.body)
			assert.Equal(t, wantRspauth, info[0].Param("rspauth"))
			assert.Equal(t, d.qopFor(ch), info[0].Param("qop"))
			assert.Equal(t, "c0ffee", info[0].Param("cnonce"))
			assert.Equal(t, "00000001", info[0].Param("nc"))
			assert.Empty(t, info[0].Param("nextnonce"), "nextnonce is off by default")
		})
	}
}

func TestDigestRefusesWrongCredentialsWithAFreshChallenge(t *testing.T) {
	tests := []struct {
		name string
		d    testDigest
	}{
		{"wrong password", testDigest{user: "alice", password: "nope"}},
		{"unknown user", testDigest{user: "mallory", password: "wonderland"}},
		{"userhash of an unknown user", testDigest{user: "mallory", password: "x", userhash: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t)
			ch := firstChallenge(t, srv, "/digest/sha-256/")
			d := tt.d
			d.method, d.uri = http.MethodGet, "/digest/sha-256/"
			r := get(t, srv.URL()+"/digest/sha-256/", d.authorization(ch))
			require.Equal(t, http.StatusUnauthorized, r.status)
			again := challenges(t, r)
			require.Len(t, again, 1)
			assert.NotEqual(t, ch.Param("nonce"), again[0].Param("nonce"), "a fresh nonce")
			assert.Empty(t, again[0].Param("stale"), "stale only when the credentials were right")
			assert.NotContains(t, r.body, "nope")
		})
	}
}

func TestDigestAuthIntCoversTheBody(t *testing.T) {
	srv, _ := newTestServer(t)
	ch := firstChallenge(t, srv, "/digest/auth-int/")
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodPost, uri: "/digest/auth-int/", body: "the body signed"}
	r := send(t, http.MethodPost, srv.URL()+"/digest/auth-int/", d.authorization(ch), nil, "another body")
	assert.Equal(t, http.StatusUnauthorized, r.status)
}

func TestDigestNonceCountMustNotRepeat(t *testing.T) {
	srv, _ := newTestServer(t)
	path := "/digest/sha-256/"
	ch := firstChallenge(t, srv, path)
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: path}
	for _, nc := range []int{1, 2, 5, 3} { // out of order is fine
		d.nc = nc
		require.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status, "nc %d", nc)
	}
	for _, nc := range []int{1, 5, 3} {
		d.nc = nc
		r := get(t, srv.URL()+path, d.authorization(ch))
		assert.Equal(t, http.StatusUnauthorized, r.status, "nc %d replayed", nc)
		assert.Empty(t, challenges(t, r)[0].Param("stale"), "a replay is not stale")
	}
	assert.Equal(t, 3, srv.DigestReplays())
	d.nc = 100
	require.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status)
	d.nc = 6 // far below the highest, but never seen: late, not a replay
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status)
	assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL()+path, d.authorization(ch)).status, "nc 6 replayed")
	assert.Equal(t, 4, srv.DigestReplays())
}

func TestNonceCountsAreTrackedExactlyInAnyOrder(t *testing.T) {
	// Counts arrive in any order and any distance behind the highest, as
	// when many requests share a nonce: each is accepted once, and only a
	// count seen before is a replay.
	const n = 2000 // at most about n/4 gaps at once, within maxNCGaps
	var st nonceState
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for _, i := range order {
		require.Equal(t, nonceFresh, st.take(uint32(i+1), false), "nc %d", i+1)
	}
	for _, i := range order[:100] {
		require.Equal(t, nonceReplay, st.take(uint32(i+1), false), "nc %d again", i+1)
	}
	assert.Empty(t, st.gaps, "every count below the highest was seen")
	assert.Equal(t, nonceFresh, st.take(n+1, false))
}

func TestNonceCountGapsAreBounded(t *testing.T) {
	// Every other count, so that each accepted count leaves a gap: past
	// maxNCGaps the lowest gaps are given up, and a count in them is too
	// old to check, not a replay.
	var st nonceState
	for i := 1; i <= 2*(maxNCGaps+10); i += 2 {
		require.Equal(t, nonceFresh, st.take(uint32(i), false))
	}
	assert.Len(t, st.gaps, maxNCGaps)
	assert.Equal(t, nonceTooOld, st.take(2, false), "a given-up gap")
	assert.Equal(t, nonceTooOld, st.take(1, false), "seen, but below every count still tracked")
	last := uint32(2 * (maxNCGaps + 9))
	assert.Equal(t, nonceFresh, st.take(last, false), "a gap still tracked")
	assert.Equal(t, nonceReplay, st.take(last, false))
}

func TestDigestStrictNonceCountMustIncrease(t *testing.T) {
	srv, _ := newTestServer(t, func(c *Config) { c.Digest.StrictNonceCount = true })
	path := "/digest/md5/"
	ch := firstChallenge(t, srv, path)
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: path}
	for _, tc := range []struct{ nc, want int }{{1, 200}, {3, 200}, {2, 401}, {3, 401}, {4, 200}} {
		d.nc = tc.nc
		assert.Equal(t, tc.want, get(t, srv.URL()+path, d.authorization(ch)).status, "nc %d", tc.nc)
	}
}

func TestDigestNonceGoesStaleAfterItsLifetime(t *testing.T) {
	srv, clock := newTestServer(t, func(c *Config) { c.Digest.NonceLifetime = time.Minute })
	path := "/digest/sha-512-256/"
	ch := firstChallenge(t, srv, path)
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: path, nc: 1}
	require.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status)

	clock.Advance(time.Minute + time.Second)
	d.nc = 2
	r := get(t, srv.URL()+path, d.authorization(ch))
	require.Equal(t, http.StatusUnauthorized, r.status)
	fresh := challenges(t, r)[0]
	assert.Equal(t, "true", fresh.Param("stale"))
	assert.NotEqual(t, ch.Param("nonce"), fresh.Param("nonce"))

	wrong := d
	wrong.password = "nope"
	assert.Empty(t, challenges(t, get(t, srv.URL()+path, wrong.authorization(ch)))[0].Param("stale"),
		"a wrong password on an old nonce is not stale")

	d.nc = 1
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(fresh)).status)
}

func TestDigestNonceGoesStaleAfterMaxUses(t *testing.T) {
	tests := []struct {
		name, path string
		maxUses    int
		good       int // uses before stale
	}{
		{"Config.Digest.NonceMaxUses", "/digest/sha-256/", 3, 3},
		{"/digest/stale/", "/digest/stale/", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, func(c *Config) { c.Digest.NonceMaxUses = tt.maxUses })
			ch := firstChallenge(t, srv, tt.path)
			d := testDigest{user: "bob", password: "builder", method: http.MethodGet, uri: tt.path}
			for i := 1; i <= tt.good; i++ {
				d.nc = i
				require.Equal(t, http.StatusOK, get(t, srv.URL()+tt.path, d.authorization(ch)).status, "use %d", i)
			}
			d.nc = tt.good + 1
			r := get(t, srv.URL()+tt.path, d.authorization(ch))
			require.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "true", challenges(t, r)[0].Param("stale"))
		})
	}
}

func TestDigestNextNonceWorksWithTheSameOpaque(t *testing.T) {
	for _, tt := range []struct {
		name string
		path string
		edit func(*Config)
	}{
		{"Config.Digest.NextNonce", "/digest/sha-256/", func(c *Config) { c.Digest.NextNonce = true }},
		{"/digest/nextnonce/", "/digest/nextnonce/", func(*Config) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, tt.edit)
			ch := firstChallenge(t, srv, tt.path)
			d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: tt.path, nc: 1}
			r := get(t, srv.URL()+tt.path, d.authorization(ch))
			require.Equal(t, http.StatusOK, r.status)
			info, err := reauth.ParseChallenges("Digest " + r.header.Get("Authentication-Info"))
			require.NoError(t, err)
			next := info[0].Param("nextnonce")
			require.NotEmpty(t, next)
			assert.NotEqual(t, ch.Param("nonce"), next)

			ch.Params["nonce"] = next
			assert.Equal(t, http.StatusOK, get(t, srv.URL()+tt.path, d.authorization(ch)).status)
		})
	}
}

func TestDigestWrongRspauthFailsTheClientsCheck(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		edit       func(*Config)
	}{
		{"Config.Digest.WrongRspauth", "/digest/md5/", func(c *Config) { c.Digest.WrongRspauth = true }},
		{"/digest/bad-rspauth/", "/digest/bad-rspauth/", func(*Config) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, tt.edit)
			ch := firstChallenge(t, srv, tt.path)
			d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: tt.path, nc: 1, cnonce: "c1"}
			r := get(t, srv.URL()+tt.path, d.authorization(ch))
			require.Equal(t, http.StatusOK, r.status)
			info, err := reauth.ParseChallenges("Digest " + r.header.Get("Authentication-Info"))
			require.NoError(t, err)
			_, right := d.digest(ch, r.body)
			got := info[0].Param("rspauth")
			assert.Len(t, got, len(right))
			assert.NotEqual(t, right, got)
		})
	}
}

// Digest credentials that break the protocol get 400 and say why;
// credentials for another protection space get a fresh challenge.
func TestDigestProtocolErrors(t *testing.T) {
	srv, _ := newTestServer(t)
	path := "/digest/sha-256/"
	ch := firstChallenge(t, srv, path)
	good := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: path, nc: 1}.authorization(ch)
	replace := func(param, value string) string {
		c, err := reauth.ParseChallenges(good)
		require.NoError(t, err)
		if value == "" {
			delete(c[0].Params, param)
		} else {
			c[0].Params[param] = value
		}
		return c[0].String()
	}
	tests := []struct {
		name, authorization string
		status              int
		says                string
	}{
		{"no username", replace("username", ""), 400, "lack username"},
		{"no nonce", replace("nonce", ""), 400, "lack nonce"},
		{"no qop", replace("qop", ""), 400, "lack qop"},
		{"no cnonce", replace("cnonce", ""), 400, "lack cnonce"},
		{"nc not 8 digits", replace("nc", "1"), 400, "nc must be 8 hex digits"},
		{"nc not hex", replace("nc", "0000000g"), 400, "nc must be 8 hex digits"},
		{"nc zero", replace("nc", "00000000"), 400, "counting from 00000001"},
		{"response not hex", replace("response", strings.Repeat("z", 64)), 400, "hex"},
		{"response too short", replace("response", "abcd"), 400, "hex digits"},
		{"qop not offered", replace("qop", "auth-int"), 400, "not offered"},
		{"uri of another resource", replace("uri", "/digest/md5/"), 400, "request-target"},
		{"opaque changed", replace("opaque", "forged"), 400, "opaque"},
		{"userhash not a boolean", replace("userhash", "maybe"), 400, "userhash"},
		{"username and username*", replace("username*", "UTF-8''alice"), 400, "both username and username*"},
		{"token68", "Digest abcdef==", 400, "auth-params"},
		{"another realm", replace("realm", "elsewhere"), 401, "another realm"},
		{"algorithm not offered", replace("algorithm", "MD5"), 401, "not offered"},
		{"unknown algorithm", replace("algorithm", "SHA-1"), 401, "not offered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv.URL()+path, tt.authorization)
			assert.Equal(t, tt.status, r.status)
			assert.Contains(t, r.body, tt.says)
			if tt.status == http.StatusUnauthorized {
				assert.NotEmpty(t, r.header.Values("WWW-Authenticate"))
			}
		})
	}
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+path, good).status, "the unaltered credentials are good")
}

func TestDigestAcceptsAbsoluteFormURI(t *testing.T) {
	srv, _ := newTestServer(t)
	path := "/digest/md5/"
	ch := firstChallenge(t, srv, path)
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: srv.URL() + path, nc: 1}
	assert.Equal(t, http.StatusOK, get(t, srv.URL()+path, d.authorization(ch)).status)
}

func TestDigestNonceIsBoundToItsRealm(t *testing.T) {
	srv, _ := newTestServer(t)
	md5 := firstChallenge(t, srv, "/digest/md5/")
	sess := firstChallenge(t, srv, "/digest/md5-sess/")
	// The md5 nonce, answered in the md5-sess realm with a correct digest.
	sess.Params["nonce"], sess.Params["opaque"] = md5.Param("nonce"), md5.Param("opaque")
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: "/digest/md5-sess/", nc: 1}
	r := get(t, srv.URL()+"/digest/md5-sess/", d.authorization(sess))
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	assert.Equal(t, "true", challenges(t, r)[0].Param("stale"))
}
