package mockserver

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/require"
)

// The helpers here build requests by hand, as a client author would, and
// compute Basic and Digest credentials independently of the server's code.

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestServer starts a server on DefaultConfig with a manual clock; edit
// changes the configuration first.
func newTestServer(t *testing.T, edit ...func(*Config)) (*Server, *ManualClock) {
	t.Helper()
	clock := NewManualClock(testStart)
	cfg := DefaultConfig()
	cfg.Clock = clock
	for _, e := range edit {
		e(&cfg)
	}
	srv := New(cfg)
	t.Cleanup(srv.Close)
	return srv, clock
}

// result is a response read whole.
type result struct {
	status int
	header http.Header
	body   string
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &m), "body: %s", r.body)
	return m
}

// send makes one request. authorization "" sends no Authorization field.
func send(t *testing.T, method, target, authorization string, header http.Header, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func get(t *testing.T, target, authorization string) result {
	t.Helper()
	return send(t, http.MethodGet, target, authorization, nil, "")
}

// postForm posts an application/x-www-form-urlencoded body.
func postForm(t *testing.T, target, authorization string, form url.Values) result {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	return send(t, http.MethodPost, target, authorization, h, form.Encode())
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func bearer(token string) string { return "Bearer " + token }

// challenges parses the WWW-Authenticate fields of a response.
func challenges(t *testing.T, r result) []reauth.Challenge {
	t.Helper()
	chs, err := reauth.ParseChallenges(r.header.Values("WWW-Authenticate")...)
	require.NoError(t, err)
	return chs
}

// testDigest computes Digest credentials from a challenge, written from
// RFC 7616 §3.4 without the server's digest.go.
type testDigest struct {
	user, password string
	method, uri    string
	body           string
	cnonce         string
	nc             int
	qop            string // "" picks the first offered
	userhash       bool
	usernameStar   bool // send username* (RFC 8187) instead of username
}

func testHash(alg string) (func() hash.Hash, bool) {
	a := strings.ToUpper(strings.TrimSuffix(strings.ToUpper(alg), "-SESS"))
	sess := strings.HasSuffix(strings.ToUpper(alg), "-SESS")
	switch a {
	case "MD5", "":
		return md5.New, sess
	case "SHA-256":
		return sha256.New, sess
	case "SHA-512-256":
		return sha512.New512_256, sess
	}
	panic("unknown algorithm " + alg)
}

func hexHash(newHash func() hash.Hash, s string) string {
	h := newHash()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// digestValues returns the request digest and the expected rspauth for a
// response body.
func (d testDigest) digest(ch reauth.Challenge, responseBody string) (response, rspauth string) {
	d = d.withDefaults()
	newHash, sess := testHash(ch.Param("algorithm"))
	H := func(s string) string { return hexHash(newHash, s) }
	realm, nonce := ch.Param("realm"), ch.Param("nonce")
	nc := ncString(d.nc)
	ha1 := H(d.user + ":" + realm + ":" + d.password)
	if sess {
		ha1 = H(ha1 + ":" + nonce + ":" + d.cnonce)
	}
	qop := d.qopFor(ch)
	a2 := d.method + ":" + d.uri
	ra2 := ":" + d.uri
	if qop == "auth-int" {
		a2 += ":" + H(d.body)
		ra2 += ":" + H(responseBody)
	}
	response = H(ha1 + ":" + nonce + ":" + nc + ":" + d.cnonce + ":" + qop + ":" + H(a2))
	rspauth = H(ha1 + ":" + nonce + ":" + nc + ":" + d.cnonce + ":" + qop + ":" + H(ra2))
	return response, rspauth
}

func (d testDigest) qopFor(ch reauth.Challenge) string {
	if d.qop != "" {
		return d.qop
	}
	first, _, _ := strings.Cut(ch.Param("qop"), ",")
	return strings.TrimSpace(first)
}

// withDefaults fills the cnonce and nonce count a test left out.
func (d testDigest) withDefaults() testDigest {
	if d.cnonce == "" {
		d.cnonce = "0a4f113b"
	}
	if d.nc == 0 {
		d.nc = 1
	}
	return d
}

func ncString(n int) string {
	if n == 0 {
		n = 1
	}
	return fmt.Sprintf("%08x", n)
}

// authorization builds the Authorization field value answering ch.
func (d testDigest) authorization(ch reauth.Challenge) string {
	d = d.withDefaults()
	response, _ := d.digest(ch, "")
	newHash, _ := testHash(ch.Param("algorithm"))
	var b strings.Builder
	b.WriteString("Digest ")
	switch {
	case d.userhash:
		b.WriteString(`username="` + hexHash(newHash, d.user+":"+ch.Param("realm")) + `", userhash=true, `)
	case d.usernameStar:
		b.WriteString(`username*=UTF-8''` + url.PathEscape(d.user) + `, `)
	default:
		b.WriteString(`username="` + d.user + `", `)
	}
	alg := ch.Param("algorithm")
	b.WriteString(`realm="` + ch.Param("realm") + `", uri="` + d.uri + `", algorithm=` + alg +
		`, nonce="` + ch.Param("nonce") + `", nc=` + ncString(d.nc) + `, cnonce="` + d.cnonce +
		`", qop=` + d.qopFor(ch) + `, response="` + response + `"`)
	if o := ch.Param("opaque"); o != "" {
		b.WriteString(`, opaque="` + o + `"`)
	}
	return b.String()
}

// firstChallenge fetches path and returns its first (or only) challenge.
func firstChallenge(t *testing.T, srv *Server, path string) reauth.Challenge {
	t.Helper()
	r := get(t, srv.URL()+path, "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	chs := challenges(t, r)
	require.NotEmpty(t, chs)
	return chs[0]
}
