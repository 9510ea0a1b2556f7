//go:build integration

package reauth

// Token requests with DPoP proofs and private_key_jwt client assertions
// against panva's oidc-provider (scripts/oidc-provider.sh, REAUTH_OIDC_URL).
// These tests live in the package because tokenTransport is not exported
// yet: OAuth2Options.DPoP and ClientKey will wire it (see dpoptoken.go), and
// then they move to integration/ as tests of the public API.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// oidcPeer is the peer scripts/oidc-provider.sh started.
type oidcPeer struct {
	origin string // http://127.0.0.1:PORT
	keys   string // directory of the private_key_jwt clients' keys
}

func startedOIDCPeer(t *testing.T) oidcPeer {
	t.Helper()
	origin, keys := os.Getenv("REAUTH_OIDC_URL"), os.Getenv("REAUTH_OIDC_KEYS")
	if origin == "" || keys == "" {
		t.Fatal("REAUTH_OIDC_URL and REAUTH_OIDC_KEYS are not set; start the peer with scripts/oidc-provider.sh start DIR, then: set -a; . DIR/oidc.env; set +a")
	}
	u, err := url.Parse(origin)
	require.NoError(t, err)
	ip := net.ParseIP(u.Hostname())
	require.True(t, u.Scheme == "http" && ip != nil && ip.IsLoopback(), "REAUTH_OIDC_URL=%q: want http://127.0.0.1:PORT", origin)
	return oidcPeer{origin: origin, keys: keys}
}

// clientKey reads the PKCS #8 key the peer made for a private_key_jwt client.
func (p oidcPeer) clientKey(t *testing.T, file string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.keys, file))
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, "%s is not PEM", file)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	return k.(crypto.Signer)
}

// tokenRequests is the number of token requests of client the peer has
// seen. Each test uses clients no test running at the same time uses
// (integration/ runs beside this package).
func (p oidcPeer) tokenRequests(t *testing.T, client string) int {
	t.Helper()
	resp, err := http.Get(p.origin + "/counts?client_id=" + url.QueryEscape(client))
	require.NoError(t, err)
	defer resp.Body.Close()
	var c map[string]int
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c["POST /token"]
}

func (p oidcPeer) jkt(t *testing.T, token string) string {
	t.Helper()
	req, err := http.NewRequest("POST", p.origin+"/token/introspection", strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("dpop-client", "dpop-client-secret-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v struct {
		Active bool `json:"active"`
		Cnf    struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	require.True(t, v.Active)
	return v.Cnf.JKT
}

func withTokenClient(tt *tokenTransport) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tt})
}

// TestOIDCTokenEndpointNonce: with nonces required, the first token request
// is refused for its nonce and sent again once; later fetches carry the
// nonce at once. The token is bound to the key's thumbprint.
func TestOIDCTokenEndpointNonce(t *testing.T) {
	p := startedOIDCPeer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ctx := withTokenClient(&tokenTransport{dpop: key})
	cfg := &clientcredentials.Config{ClientID: "dpop-client", ClientSecret: "dpop-client-secret-1", TokenURL: p.origin + "/token", AuthStyle: oauth2.AuthStyleInHeader}

	for i, want := range []int{2, 1, 1} {
		before := p.tokenRequests(t, "dpop-client")
		tok, err := cfg.Token(ctx)
		require.NoError(t, err, "fetch %d", i+1)
		assert.Equal(t, "DPoP", tok.TokenType)
		assert.Equal(t, want, p.tokenRequests(t, "dpop-client")-before, "fetch %d", i+1)
		if i == 0 {
			jkt, err := JWKThumbprint(key.Public())
			require.NoError(t, err)
			assert.Equal(t, jkt, p.jkt(t, tok.AccessToken))
		}
	}
}

// TestOIDCPrivateKeyJWT: client credentials with a client assertion instead
// of a secret, through ClientCredentials and a Transport (Bearer tokens: the
// client does not use DPoP). One token request for two calls.
func TestOIDCPrivateKeyJWT(t *testing.T) {
	p := startedOIDCPeer(t)
	tt := &tokenTransport{client: &clientKey{key: p.clientKey(t, "client-es256.pem"), keyID: "es256-1", clientID: "pkjwt-es256-client"}}
	cfg := &clientcredentials.Config{ClientID: "pkjwt-es256-client", TokenURL: p.origin + "/token", AuthStyle: oauth2.AuthStyleInParams}
	c := &http.Client{Transport: &Transport{
		Credentials: ClientCredentials(cfg, OAuth2Options{HTTPClient: &http.Client{Transport: tt}}),
		Origins:     []string{p.origin},
	}}
	before := p.tokenRequests(t, "pkjwt-es256-client")
	for range 2 {
		resp, err := c.Get(p.origin + "/resource")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.JSONEq(t, `{"client_id":"pkjwt-es256-client","token_type":"Bearer"}`, string(body))
	}
	assert.Equal(t, 1, p.tokenRequests(t, "pkjwt-es256-client")-before)

	// A wrong key is refused once, with no retry.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	before = p.tokenRequests(t, "pkjwt-es256-client")
	_, err = cfg.Token(withTokenClient(&tokenTransport{client: &clientKey{key: other, clientID: "pkjwt-es256-client"}}))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Equal(t, 1, p.tokenRequests(t, "pkjwt-es256-client")-before)
}

// TestOIDCPrivateKeyJWTWithDPoP: an Ed25519 client assertion and a DPoP
// proof on the same request, for client credentials and for refresh (the
// peer rotates refresh tokens). The retry for the nonce carries a new
// assertion: the provider refuses a jti it has seen.
func TestOIDCPrivateKeyJWTWithDPoP(t *testing.T) {
	p := startedOIDCPeer(t)
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tt := &tokenTransport{dpop: dpopKey, client: &clientKey{key: p.clientKey(t, "client-ed25519.pem"), keyID: "eddsa-1", clientID: "pkjwt-eddsa-client"}}
	ctx := withTokenClient(tt)
	cfg := &clientcredentials.Config{ClientID: "pkjwt-eddsa-client", TokenURL: p.origin + "/token", AuthStyle: oauth2.AuthStyleInParams}
	for i, want := range []int{2, 1} {
		before := p.tokenRequests(t, "pkjwt-eddsa-client")
		tok, err := cfg.Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, "DPoP", tok.TokenType)
		assert.Equal(t, want, p.tokenRequests(t, "pkjwt-eddsa-client")-before, "fetch %d", i+1)
	}

	// Refresh, twice: rotated each time, one request each (the nonce is known).
	resp, err := http.Post(p.origin+"/test/refresh-token?client_id=pkjwt-eddsa-client", "", nil)
	require.NoError(t, err)
	var minted struct {
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&minted))
	resp.Body.Close()
	rcfg := &oauth2.Config{ClientID: "pkjwt-eddsa-client", Endpoint: oauth2.Endpoint{TokenURL: p.origin + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	rt := minted.RefreshToken
	for i := range 2 {
		before := p.tokenRequests(t, "pkjwt-eddsa-client")
		tok, err := rcfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		require.NoError(t, err, "refresh %d", i+1)
		assert.Equal(t, "DPoP", tok.TokenType)
		assert.NotEqual(t, rt, tok.RefreshToken, "rotated")
		assert.Equal(t, 1, p.tokenRequests(t, "pkjwt-eddsa-client")-before, "refresh %d", i+1)
		rt = tok.RefreshToken
	}

	// The client must use DPoP: without a proof the grant is refused, once.
	before := p.tokenRequests(t, "pkjwt-eddsa-client")
	_, err = cfg.Token(withTokenClient(&tokenTransport{client: tt.client}))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
	assert.Equal(t, 1, p.tokenRequests(t, "pkjwt-eddsa-client")-before)
}

// TestOIDCClientNotAllowedDPoP: a client whose server refuses DPoP gets
// invalid_dpop_proof after one request; the token transport does not retry.
func TestOIDCClientNotAllowedDPoP(t *testing.T) {
	p := startedOIDCPeer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cfg := &clientcredentials.Config{ClientID: "no-dpop-client", ClientSecret: "no-dpop-client-secret-1", TokenURL: p.origin + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	before := p.tokenRequests(t, "no-dpop-client")
	_, err = cfg.Token(withTokenClient(&tokenTransport{dpop: key}))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_dpop_proof", re.ErrorCode)
	assert.Equal(t, 1, p.tokenRequests(t, "no-dpop-client")-before)
	assert.NotContains(t, err.Error(), "no-dpop-client-secret-1")
}
