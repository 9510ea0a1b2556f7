//go:build integration

package integration_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// The clients integration/oidc/server.mjs registers (test-only secrets).
const (
	oidcBasicClient    = "basic-client"
	oidcBasicSecret    = "basic-client-secret-1"
	oidcDPoPClient     = "dpop-client"
	oidcDPoPSecret     = "dpop-client-secret-1"
	oidcNoDPoPClient   = "no-dpop-client"
	oidcNoDPoPSecret   = "no-dpop-client-secret-1"
	oidcHowToStart     = "start it with scripts/oidc-provider.sh start DIR, then: set -a; . DIR/oidc.env; set +a"
	oidcResourcePath   = "/resource"
	oidcTokenPath      = "/token"
	oidcRevokePath     = "/token/revocation"
	oidcIntrospectPath = "/token/introspection"
)

// oidcOrigin is the origin of the oidc-provider peer that
// scripts/oidc-provider.sh started (REAUTH_OIDC_URL in DIR/oidc.env).
func oidcOrigin(t *testing.T) string {
	t.Helper()
	if os.Getenv("REAUTH_OIDC_URL") == "" {
		t.Fatalf("REAUTH_OIDC_URL is not set; %s", oidcHowToStart)
	}
	return loopbackOrigin(t, "REAUTH_OIDC_URL")
}

// oidcCounts is what GET /counts?client_id=ID says: the requests of one
// client per "METHOD path". Each test counts a client no test running at
// the same time uses (the root package's OIDC tests run beside these).
type oidcCounts map[string]int

func readOIDCCounts(t *testing.T, origin, client string) oidcCounts {
	t.Helper()
	resp, err := http.Get(origin + "/counts?client_id=" + url.QueryEscape(client))
	require.NoError(t, err)
	defer resp.Body.Close()
	var c oidcCounts
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c
}

// since is what the server saw between before and now.
func (now oidcCounts) since(before oidcCounts) oidcCounts {
	d := oidcCounts{}
	for k, v := range now {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func oidcGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// revoke revokes tok at the provider's revocation endpoint (RFC 7009).
func revoke(t *testing.T, origin, clientID, secret, tok string) {
	t.Helper()
	req, err := http.NewRequest("POST", origin+oidcRevokePath, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "revocation")
}

// tokenLog keeps what OnToken saw.
type tokenLog struct {
	mu   sync.Mutex
	toks []*oauth2.Token
}

func (l *tokenLog) onToken(_ context.Context, tok *oauth2.Token) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.toks = append(l.toks, tok)
	return nil
}

func (l *tokenLog) last() *oauth2.Token {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.toks[len(l.toks)-1]
}

// TestOIDCClientCredentialsBasic: client credentials with
// client_secret_basic, through a Transport, to a resource that checks the
// token with the provider; one token request for three calls.
func TestOIDCClientCredentialsBasic(t *testing.T) {
	origin := oidcOrigin(t)
	before := readOIDCCounts(t, origin, oidcBasicClient)
	cfg := &clientcredentials.Config{ClientID: oidcBasicClient, ClientSecret: oidcBasicSecret, TokenURL: origin + oidcTokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	c := &http.Client{Transport: &reauth.Transport{Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{}), Origins: []string{origin}}}
	for range 3 {
		status, body := oidcGet(t, c, origin+oidcResourcePath)
		require.Equal(t, http.StatusOK, status, body)
		assert.JSONEq(t, `{"client_id":"basic-client","token_type":"Bearer"}`, body)
	}
	assert.Equal(t, oidcCounts{"POST /token": 1, "GET /resource": 3}, readOIDCCounts(t, origin, oidcBasicClient).since(before))
}

// TestOIDCRevokedTokenIsReplacedOnce: the provider revokes the token; the
// next call is refused with invalid_token, and the Transport fetches one new
// token and retries once.
func TestOIDCRevokedTokenIsReplacedOnce(t *testing.T) {
	origin := oidcOrigin(t)
	var log tokenLog
	cfg := &clientcredentials.Config{ClientID: oidcBasicClient, ClientSecret: oidcBasicSecret, TokenURL: origin + oidcTokenPath}
	c := &http.Client{Transport: &reauth.Transport{Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{OnToken: log.onToken}), Origins: []string{origin}}}
	status, body := oidcGet(t, c, origin+oidcResourcePath)
	require.Equal(t, http.StatusOK, status, body)
	revoke(t, origin, oidcBasicClient, oidcBasicSecret, log.last().AccessToken)

	before := readOIDCCounts(t, origin, oidcBasicClient)
	status, body = oidcGet(t, c, origin+oidcResourcePath)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, oidcCounts{"POST /token": 1, "GET /resource": 2}, readOIDCCounts(t, origin, oidcBasicClient).since(before),
		"one refused call, one token request, one retry")
}

// mintRefreshToken asks the peer for a refresh token of clientID, as an
// authorization code exchange would have left one.
func mintRefreshToken(t *testing.T, origin, clientID string) string {
	t.Helper()
	resp, err := http.Post(origin+"/test/refresh-token?client_id="+url.QueryEscape(clientID), "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v struct {
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, v.RefreshToken)
	return v.RefreshToken
}

// TestOIDCRefreshTokenRotationThroughOnToken: the provider rotates refresh
// tokens and revokes the whole grant when a used one comes back, so the
// second refresh only succeeds with the refresh token the first one
// returned, which OnToken receives. The clock (OAuth2Options.Now) moves past
// the token's expiry to make the second refresh happen.
func TestOIDCRefreshTokenRotationThroughOnToken(t *testing.T) {
	origin := oidcOrigin(t)
	first := mintRefreshToken(t, origin, oidcBasicClient)
	var log tokenLog
	var clock clockOffset
	cfg := &oauth2.Config{ClientID: oidcBasicClient, ClientSecret: oidcBasicSecret, Endpoint: oauth2.Endpoint{TokenURL: origin + oidcTokenPath, AuthStyle: oauth2.AuthStyleInHeader}}
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.RefreshToken(cfg, &oauth2.Token{RefreshToken: first}, reauth.OAuth2Options{OnToken: log.onToken, Now: clock.now}),
		Origins:     []string{origin},
	}}
	before := readOIDCCounts(t, origin, oidcBasicClient)
	status, body := oidcGet(t, c, origin+oidcResourcePath)
	require.Equal(t, http.StatusOK, status, body)
	second := log.last().RefreshToken
	require.NotEmpty(t, second)
	assert.NotEqual(t, first, second, "the provider rotated the refresh token")

	clock.advance(time.Hour) // past the access token's 600 s
	status, body = oidcGet(t, c, origin+oidcResourcePath)
	require.Equal(t, http.StatusOK, status, body, "the second refresh used the rotated refresh token")
	third := log.last().RefreshToken
	assert.NotEqual(t, second, third, "rotated again")
	assert.Len(t, log.toks, 2, "two refreshes, each seen by OnToken")
	assert.Equal(t, oidcCounts{"POST /token": 2, "GET /resource": 2}, readOIDCCounts(t, origin, oidcBasicClient).since(before))

	// The first refresh token is spent: presenting it again fails (and
	// revokes the grant), which is what sending a stale one would have done.
	_, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: first}).Token()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
}

// clockOffset is time.Now moved forward by advance.
type clockOffset struct{ off atomic.Int64 }

func (c *clockOffset) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clockOffset) advance(d time.Duration) { c.off.Add(int64(d)) }

// oidcDPoPKeys are one key of each kind reauth.DPoPProof signs with.
func oidcDPoPKeys(t *testing.T) map[string]crypto.Signer {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return map[string]crypto.Signer{"ES256": ec, "EdDSA": ed25519Key(t), "PS256": rk}
}

// dpopTokenRequest sends a token request by hand with a DPoP proof of key.
func dpopTokenRequest(t *testing.T, origin string, key crypto.Signer, nonce string) *http.Response {
	t.Helper()
	proof, err := reauth.DPoPProof(key, "POST", origin+oidcTokenPath, "", nonce)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", origin+oidcTokenPath, strings.NewReader("grant_type=client_credentials"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	req.SetBasicAuth(oidcDPoPClient, oidcDPoPSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// TestOIDCAcceptsDPoPProofs checks reauth.DPoPProof and reauth.JWKThumbprint
// against two independent implementations: oidc-provider's token endpoint
// (its nonces required) binds the token to the key's thumbprint, and the
// peer's resource (jose) verifies the proofs and requires its own nonce.
func TestOIDCAcceptsDPoPProofs(t *testing.T) {
	origin := oidcOrigin(t)
	for alg, key := range oidcDPoPKeys(t) {
		t.Run(alg, func(t *testing.T) {
			before := readOIDCCounts(t, origin, oidcDPoPClient)
			resp := dpopTokenRequest(t, origin, key, "")
			var e struct{ Error string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, "use_dpop_nonce", e.Error)
			nonce := resp.Header.Get("DPoP-Nonce")
			require.NotEmpty(t, nonce)

			resp = dpopTokenRequest(t, origin, key, nonce)
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "DPoP", tok.TokenType)

			// The provider bound the token to the key's RFC 7638 thumbprint.
			jkt, err := reauth.JWKThumbprint(key.Public())
			require.NoError(t, err)
			assert.Equal(t, jkt, introspect(t, origin, tok.AccessToken).Cnf.JKT)

			// The resource: its own nonce first, then 200; a replayed proof is refused.
			call := func(nonce, proof string) *http.Response {
				if proof == "" {
					var err error
					proof, err = reauth.DPoPProof(key, "GET", origin+oidcResourcePath+"?q=1", tok.AccessToken, nonce)
					require.NoError(t, err)
				}
				req, err := http.NewRequest("GET", origin+oidcResourcePath+"?q=1", nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
				req.Header.Set("DPoP", proof)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			resp = call("", "")
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`)
			rnonce := resp.Header.Get("DPoP-Nonce")
			require.NotEmpty(t, rnonce)
			proof, err := reauth.DPoPProof(key, "GET", origin+oidcResourcePath+"?q=1", tok.AccessToken, rnonce)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, call("", proof).StatusCode)
			resp = call("", proof)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`, "a replayed proof")

			assert.Equal(t, oidcCounts{"POST /token": 2, "POST /token/introspection": 1, "GET /resource": 3}, readOIDCCounts(t, origin, oidcDPoPClient).since(before))
		})
	}
}

type introspection struct {
	Active   bool   `json:"active"`
	ClientID string `json:"client_id"`
	Cnf      struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

func introspect(t *testing.T, origin, tok string) introspection {
	t.Helper()
	req, err := http.NewRequest("POST", origin+oidcIntrospectPath, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidcDPoPClient, oidcDPoPSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v introspection
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	require.True(t, v.Active, "introspection: the token is active")
	return v
}

func ed25519Key(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}
