package mockserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is a key the tests sign proofs and assertions with, built from
// the standard library alone: nothing of reauth's DPoP code.
type testKey struct {
	alg    string
	signer crypto.Signer
	jwk    map[string]string // the public JWK
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newTestKey(t *testing.T, alg string) testKey {
	t.Helper()
	switch alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		raw, err := k.PublicKey.Bytes()
		require.NoError(t, err)
		return testKey{alg, k, map[string]string{"kty": "EC", "crv": "P-256", "x": enc(raw[1:33]), "y": enc(raw[33:])}}
	case "EdDSA":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		return testKey{alg, k, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": enc(pub)}}
	default: // PS256, RS256
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		return testKey{alg, k, map[string]string{"kty": "RSA", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}}
	}
}

// sign returns the compact JWS of header and claims.
func (k testKey) sign(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	input := enc(h) + "." + enc(c)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k.alg {
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, k.signer.(*ecdsa.PrivateKey), sum[:])
		require.NoError(t, err)
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "EdDSA":
		sig = ed25519.Sign(k.signer.(ed25519.PrivateKey), []byte(input))
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		require.NoError(t, err)
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, sum[:])
		require.NoError(t, err)
	}
	return input + "." + enc(sig)
}

var jtiCount int

// proof returns a DPoP proof for method and URL at now; edit changes the
// header and claims before signing.
func (k testKey) proof(t *testing.T, now time.Time, method, u, token, nonce string, edit ...func(h, c map[string]any)) string {
	t.Helper()
	jtiCount++
	h := map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
	c := map[string]any{"jti": "jti-" + strings.Repeat("x", jtiCount%3) + enc(big.NewInt(int64(jtiCount)).Bytes()), "htm": method, "htu": u, "iat": now.Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		c["ath"] = enc(sum[:])
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	for _, e := range edit {
		e(h, c)
	}
	return k.sign(t, h, c)
}

func (k testKey) thumbprint() string {
	var required map[string]string
	switch k.jwk["kty"] {
	case "EC":
		required = map[string]string{"crv": k.jwk["crv"], "kty": "EC", "x": k.jwk["x"], "y": k.jwk["y"]}
	case "OKP":
		required = map[string]string{"crv": k.jwk["crv"], "kty": "OKP", "x": k.jwk["x"]}
	default:
		required = map[string]string{"e": k.jwk["e"], "kty": "RSA", "n": k.jwk["n"]}
	}
	return jwkThumbprint(required)
}

// dpopPost posts form to path with a DPoP proof (when proof != "").
func dpopPost(t *testing.T, srv *Server, path, proof string, form url.Values, authorization string) result {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if proof != "" {
		h.Set("DPoP", proof)
	}
	return send(t, http.MethodPost, srv.URL()+path, authorization, h, form.Encode())
}

func dpopGet(t *testing.T, srv *Server, path, token, proof string) result {
	t.Helper()
	h := http.Header{}
	if proof != "" {
		h.Set("DPoP", proof)
	}
	auth := ""
	if token != "" {
		auth = "DPoP " + token
	}
	return send(t, http.MethodGet, srv.URL()+path, auth, h, "")
}

var clientCredentials = url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}

// dpopToken gets a DPoP-bound token for k from /dpop/token.
func dpopToken(t *testing.T, srv *Server, clock *ManualClock, k testKey) string {
	t.Helper()
	r := dpopPost(t, srv, "/dpop/token", k.proof(t, clock.Now(), "POST", srv.URL()+"/dpop/token", "", ""), clientCredentials, basic("reauth-client", "reauth-secret"))
	require.Equal(t, http.StatusOK, r.status, r.body)
	body := r.json(t)
	require.Equal(t, "DPoP", body["token_type"])
	return body["access_token"].(string)
}

func TestJWKThumbprintOfRFC7638(t *testing.T) {
	// RFC 7638 §3.1: the example key and its thumbprint.
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	jwk := `{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	_, jkt, alg, err := parsePublicJWK(json.RawMessage(jwk))
	require.NoError(t, err)
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", jkt)
	assert.Equal(t, "PS256", alg)
}

func TestAccessTokenHashOfRFC9449(t *testing.T) {
	// RFC 9449 §7.1: the example token and the ath of its proof.
	assert.Equal(t, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo", accessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"))
}

// TestDPoPBoundTokens: for each proof algorithm, /dpop/token issues a
// token bound to the proof's key, and /dpop/resource takes it only as DPoP
// with a proof by that key.
func TestDPoPBoundTokens(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			srv, clock := newTestServer(t)
			k := newTestKey(t, alg)
			tok := dpopToken(t, srv, clock, k)
			resource := srv.URL() + "/dpop/resource"

			r := dpopGet(t, srv, "/dpop/resource", tok, k.proof(t, clock.Now(), "GET", resource, tok, ""))
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, k.thumbprint(), r.json(t)["jkt"], "bound to the proof's key")
			assert.Equal(t, "reauth-client", r.json(t)["client"])
			assert.Empty(t, r.header.Get("DPoP-Nonce"), "no nonces here")

			r = get(t, resource, "Bearer "+tok)
			assert.Equal(t, http.StatusUnauthorized, r.status, "not as Bearer")
			assert.Equal(t, `DPoP realm="dpop@reauth.mock", algs="ES256 EdDSA PS256"`, r.header.Get("WWW-Authenticate"))
			r = get(t, srv.URL()+"/oauth2/resource", "Bearer "+tok)
			assert.Equal(t, http.StatusUnauthorized, r.status, "a DPoP-bound token is no Bearer token")

			other := newTestKey(t, "ES256")
			r = dpopGet(t, srv, "/dpop/resource", tok, other.proof(t, clock.Now(), "GET", resource, tok, ""))
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`, "a proof by another key")

			srv.RevokeAll()
			r = dpopGet(t, srv, "/dpop/resource", tok, k.proof(t, clock.Now(), "GET", resource, tok, ""))
			assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`, "revoked")
			for _, req := range srv.Requests() {
				assert.NotContains(t, req.Credential, tok, "the log never shows the token")
			}
		})
	}
}

func TestDPoPNonceAtTheTokenEndpoint(t *testing.T) {
	srv, clock := newTestServer(t)
	k := newTestKey(t, "ES256")
	u := srv.URL() + "/dpop/nonce/token"
	client := basic("reauth-client", "reauth-secret")

	r := dpopPost(t, srv, "/dpop/nonce/token", k.proof(t, clock.Now(), "POST", u, "", ""), clientCredentials, client)
	require.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "use_dpop_nonce", r.json(t)["error"])
	nonce := r.header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)

	r = dpopPost(t, srv, "/dpop/nonce/token", k.proof(t, clock.Now(), "POST", u, "", nonce), clientCredentials, client)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "DPoP", r.json(t)["token_type"])
	assert.Equal(t, nonce, r.header.Get("DPoP-Nonce"), "the answer carries the nonce")

	r = dpopPost(t, srv, "/dpop/nonce/token", k.proof(t, clock.Now(), "POST", u, "", "made-up"), clientCredentials, client)
	assert.Equal(t, "use_dpop_nonce", r.json(t)["error"], "a nonce the server did not issue")
	assert.Equal(t, nonce, r.header.Get("DPoP-Nonce"))

	clock.Advance(5 * time.Minute) // Config.DPoP.NonceLifetime
	r = dpopPost(t, srv, "/dpop/nonce/token", k.proof(t, clock.Now(), "POST", u, "", nonce), clientCredentials, client)
	assert.Equal(t, "use_dpop_nonce", r.json(t)["error"], "the nonce rotated")
	fresh := r.header.Get("DPoP-Nonce")
	assert.NotEqual(t, nonce, fresh)
	r = dpopPost(t, srv, "/dpop/nonce/token", k.proof(t, clock.Now(), "POST", u, "", fresh), clientCredentials, client)
	assert.Equal(t, http.StatusOK, r.status, r.body)

	r = dpopPost(t, srv, "/dpop/token", k.proof(t, clock.Now(), "POST", srv.URL()+"/dpop/token", "", ""), clientCredentials, client)
	assert.Equal(t, http.StatusOK, r.status, "/dpop/token asks for no nonce")
}

func TestDPoPNonceAtTheResource(t *testing.T) {
	srv, clock := newTestServer(t)
	k := newTestKey(t, "EdDSA")
	tok := dpopToken(t, srv, clock, k)
	u := srv.URL() + "/dpop/nonce/resource"

	r := dpopGet(t, srv, "/dpop/nonce/resource", tok, k.proof(t, clock.Now(), "GET", u, tok, ""))
	require.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, `DPoP realm="dpop@reauth.mock", error="use_dpop_nonce", error_description="the DPoP proof must carry the server's current nonce (RFC 9449 §8)", algs="ES256 EdDSA PS256"`,
		r.header.Get("WWW-Authenticate"))
	nonce := r.header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)

	r = dpopGet(t, srv, "/dpop/nonce/resource", tok, k.proof(t, clock.Now(), "GET", u, tok, nonce))
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, nonce, r.header.Get("DPoP-Nonce"), "200s carry the nonce too")

	srv.RotateDPoPNonces()
	r = dpopGet(t, srv, "/dpop/nonce/resource", tok, k.proof(t, clock.Now(), "GET", u, tok, nonce))
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`, "stale after rotation")
	fresh := r.header.Get("DPoP-Nonce")
	assert.NotEqual(t, nonce, fresh)
	r = dpopGet(t, srv, "/dpop/nonce/resource", tok, k.proof(t, clock.Now(), "GET", u, tok, fresh))
	assert.Equal(t, http.StatusOK, r.status, "the same token with a new proof")

	r = dpopGet(t, srv, "/dpop/nonce/resource", "", "")
	assert.Equal(t, `DPoP realm="dpop@reauth.mock", algs="ES256 EdDSA PS256"`, r.header.Get("WWW-Authenticate"), "no credentials: the bare challenge")
}

// TestDPoPProofIsVerified: every rule of RFC 9449 §4.3 the server checks
// refuses a proof that breaks it, with invalid_dpop_proof and a message
// naming the rule.
func TestDPoPProofIsVerified(t *testing.T) {
	srv, clock := newTestServer(t)
	k := newTestKey(t, "ES256")
	tok := dpopToken(t, srv, clock, k)
	u := srv.URL() + "/dpop/resource"
	now := clock.Now()
	set := func(name string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { c[name] = v }
	}
	setHeader := func(name string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { h[name] = v }
	}
	del := func(name string) func(h, c map[string]any) {
		return func(h, c map[string]any) { delete(c, name) }
	}
	withPrivate := map[string]string{"d": "AAAA"}
	for n, v := range k.jwk {
		withPrivate[n] = v
	}
	rsaKey := newTestKey(t, "PS256")
	tests := []struct {
		name  string
		proof func() string
		says  string
	}{
		{"not a JWT", func() string { return "abc.def" }, "three base64url parts"},
		{"typ JWT", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("typ", "JWT")) }, "typ must be"},
		{"alg none", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("alg", "none")) }, "alg none is not one of"},
		{"alg HS256", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("alg", "HS256")) }, "alg HS256 is not one of"},
		{"alg of another key type", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("alg", "EdDSA")) }, "does not fit the jwk"},
		{"private key in jwk", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("jwk", withPrivate)) }, "private key material (d)"},
		{"no jwk", func() string {
			return k.proof(t, now, "GET", u, tok, "", func(h, c map[string]any) { delete(h, "jwk") })
		}, "no jwk"},
		{"jwk of another key", func() string { return k.proof(t, now, "GET", u, tok, "", setHeader("jwk", newTestKey(t, "ES256").jwk)) }, "does not verify"},
		{"RSA key signs as PS256 with RSA jwk of another key", func() string {
			return rsaKey.proof(t, now, "GET", u, tok, "", setHeader("jwk", newTestKey(t, "PS256").jwk))
		}, "does not verify"},
		{"htm", func() string { return k.proof(t, now, "POST", u, tok, "") }, "htm is not the request method GET"},
		{"htu of another path", func() string { return k.proof(t, now, "GET", srv.URL()+"/dpop/nonce/resource", tok, "") }, "htu is not"},
		{"htu with a query", func() string { return k.proof(t, now, "GET", u+"?a=1", tok, "") }, "query or fragment"},
		{"iat too old", func() string { return k.proof(t, now.Add(-2*time.Minute), "GET", u, tok, "") }, "iat is more than 1m0s"},
		{"iat in the future", func() string { return k.proof(t, now.Add(2*time.Minute), "GET", u, tok, "") }, "iat is more than"},
		{"iat a string", func() string { return k.proof(t, now, "GET", u, tok, "", set("iat", "now")) }, "iat is missing"},
		{"no jti", func() string { return k.proof(t, now, "GET", u, tok, "", del("jti")) }, "jti must be"},
		{"no ath", func() string { return k.proof(t, now, "GET", u, "", "") }, "ath is not"},
		{"ath of another token", func() string { return k.proof(t, now, "GET", u, tok+"x", "") }, "ath is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dpopGet(t, srv, "/dpop/resource", tok, tt.proof())
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)
			assert.Contains(t, r.body, tt.says)
		})
	}

	t.Run("replayed", func(t *testing.T) {
		p := k.proof(t, now, "GET", u, tok, "")
		assert.Equal(t, http.StatusOK, dpopGet(t, srv, "/dpop/resource", tok, p).status)
		r := dpopGet(t, srv, "/dpop/resource", tok, p)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, r.body, "replay")
	})
	t.Run("no proof", func(t *testing.T) {
		r := dpopGet(t, srv, "/dpop/resource", tok, "")
		assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)
		assert.Contains(t, r.body, "no DPoP header field")
	})
	t.Run("two proofs", func(t *testing.T) {
		h := http.Header{"Dpop": {k.proof(t, now, "GET", u, tok, ""), k.proof(t, now, "GET", u, tok, "")}}
		r := send(t, http.MethodGet, u, "DPoP "+tok, h, "")
		assert.Contains(t, r.body, "2 DPoP header fields")
	})
	t.Run("htu normalized", func(t *testing.T) {
		upper := strings.Replace(u, "http://", "HTTP://", 1)
		assert.Equal(t, http.StatusOK, dpopGet(t, srv, "/dpop/resource", tok, k.proof(t, now, "GET", upper, tok, "")).status)
	})
	t.Run("at the token endpoint", func(t *testing.T) {
		tu := srv.URL() + "/dpop/token"
		client := basic("reauth-client", "reauth-secret")
		r := dpopPost(t, srv, "/dpop/token", "", clientCredentials, client)
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Equal(t, "invalid_dpop_proof", r.json(t)["error"])
		r = dpopPost(t, srv, "/dpop/token", k.proof(t, now, "POST", tu, "some-token", ""), clientCredentials, client)
		assert.Contains(t, r.json(t)["error_description"], "ath is for requests that present an access token")
		r = dpopPost(t, srv, "/dpop/token", k.proof(t, now, "POST", tu, "", ""), clientCredentials, basic("reauth-client", "wrong"))
		assert.Equal(t, http.StatusUnauthorized, r.status, "the client is still authenticated")
	})
}

func TestReplayStoreIsBoundedAndNeverForgetsIntoAReplay(t *testing.T) {
	rs := newReplayStore()
	rs.max = 3
	now := testStart
	for i := range 3 {
		require.NoError(t, rs.use(string(rune('a'+i)), now.Add(time.Duration(i+1)*time.Minute), now))
	}
	require.NoError(t, rs.use("d", now.Add(4*time.Minute), now), "a full store evicts the entry that ends soonest")
	assert.Len(t, rs.m, 3)
	assert.Error(t, rs.use("a", now.Add(time.Minute), now), "the evicted jti is too old to accept again")
	assert.Error(t, rs.use("d", now.Add(4*time.Minute), now), "a remembered jti is a replay")
	require.NoError(t, rs.use("e", now.Add(5*time.Minute), now.Add(3*time.Minute)), "expired entries go first")
	assert.LessOrEqual(t, len(rs.m), 3)
}

// FuzzDPoPProof sends arbitrary DPoP proofs (and JWK headers inside
// otherwise well-formed proofs) to the verifier: no panic, bounded work,
// and nothing but a proof signed by its jwk's key passes.
func FuzzDPoPProof(f *testing.F) {
	srv, err := NewUnstarted(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	srv.cfg.Clock = NewManualClock(testStart)
	srv.clock = srv.cfg.Clock
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", `{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`)
	f.Add("a.b.c", `{"kty":"RSA","n":"AQAB","e":"AQAB"}`)
	f.Add("", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
	f.Fuzz(func(t *testing.T, proof, jwk string) {
		for _, p := range []string{proof, enc([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+jwk+`}`)) + "." + enc([]byte(`{}`)) + "." + proof} {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/dpop/resource", nil)
			req.Header.Set("DPoP", p)
			if _, fail := srv.verifyDPoP(req, dpopCheck{method: "GET", url: "http://127.0.0.1/dpop/resource"}); fail == nil {
				t.Fatalf("a proof no key signed passed: %q", p)
			}
		}
		if k, jkt, _, err := parsePublicJWK(json.RawMessage(jwk)); err == nil && (k == nil || len(jkt) != 43) {
			t.Fatalf("accepted jwk without a key or a 32-byte thumbprint")
		}
	})
}

// TestDPoPRefresh: the refresh_token grant at /dpop/token needs a proof
// too and binds the new access token to the proof's key; a refresh token
// of /oauth2/token is not one of /dpop/token's.
func TestDPoPRefresh(t *testing.T) {
	srv, clock := newTestServer(t)
	k := newTestKey(t, "ES256")
	u := srv.URL() + "/dpop/token"
	client := basic("reauth-client", "reauth-secret")
	r := dpopPost(t, srv, "/dpop/token", k.proof(t, clock.Now(), "POST", u, "", ""), clientCredentials, client)
	require.Equal(t, http.StatusOK, r.status, r.body)
	rt, _ := r.json(t)["refresh_token"].(string)
	require.NotEmpty(t, rt)

	next := newTestKey(t, "EdDSA")
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	r = dpopPost(t, srv, "/dpop/token", "", refresh, client)
	assert.Equal(t, "invalid_dpop_proof", r.json(t)["error"], "no proof, no refresh")
	r = dpopPost(t, srv, "/dpop/token", next.proof(t, clock.Now(), "POST", u, "", ""), refresh, client)
	require.Equal(t, http.StatusOK, r.status, r.body)
	tok := r.json(t)["access_token"].(string)
	res := srv.URL() + "/dpop/resource"
	r = dpopGet(t, srv, "/dpop/resource", tok, next.proof(t, clock.Now(), "GET", res, tok, ""))
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, next.thumbprint(), r.json(t)["jkt"])

	r = postForm(t, srv.URL()+"/oauth2/token", client, clientCredentials)
	bearerRT, _ := r.json(t)["refresh_token"].(string)
	require.NotEmpty(t, bearerRT)
	r = dpopPost(t, srv, "/dpop/token", k.proof(t, clock.Now(), "POST", u, "", ""),
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bearerRT}}, client)
	assert.Equal(t, "invalid_grant", r.json(t)["error"])
}
