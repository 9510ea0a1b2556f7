//go:build integration

package integration_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// DPoP (RFC 9449) and private_key_jwt (RFC 7523) through a reauth.Transport
// and the public OAuth2Options against oidc-provider: its token endpoint
// requires its nonces; the peer's /resource checks proofs with jose and
// requires nonces of its own. Counts are what the peer saw.

// oidcClientKey reads the PKCS #8 key the peer made for a private_key_jwt
// client (REAUTH_OIDC_KEYS).
func oidcClientKey(t *testing.T, file string) crypto.Signer {
	t.Helper()
	dir := os.Getenv("REAUTH_OIDC_KEYS")
	if dir == "" {
		t.Fatalf("REAUTH_OIDC_KEYS is not set; %s", oidcHowToStart)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, "%s is not PEM", file)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	return k.(crypto.Signer)
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// TestOIDCDPoPThroughTransport: the first call costs two token requests
// (the endpoint's nonce) and two resource requests (the resource's nonce);
// then one resource request per call. A revoked token costs one token
// request (its nonce is remembered) and one retry.
func TestOIDCDPoPThroughTransport(t *testing.T) {
	origin := oidcOrigin(t)
	key := p256(t)
	var log tokenLog
	cfg := &clientcredentials.Config{ClientID: oidcDPoPClient, ClientSecret: oidcDPoPSecret, TokenURL: origin + oidcTokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{DPoP: key, OnToken: log.onToken}),
		Origins:     []string{origin},
	}}
	before := readOIDCCounts(t, origin, oidcDPoPClient)
	status, body := oidcGet(t, c, origin+oidcResourcePath+"?q=1")
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"client_id":"dpop-client","token_type":"DPoP"}`, body)
	first := readOIDCCounts(t, origin, oidcDPoPClient).since(before)
	assert.Equal(t, oidcCounts{"POST /token": 2, "GET /resource": 2}, first, "first call")
	t.Logf("first call: %v", first)

	before = readOIDCCounts(t, origin, oidcDPoPClient)
	for range 3 {
		status, body = oidcGet(t, c, origin+oidcResourcePath)
		require.Equal(t, http.StatusOK, status, body)
	}
	steady := readOIDCCounts(t, origin, oidcDPoPClient).since(before)
	assert.Equal(t, oidcCounts{"GET /resource": 3}, steady, "steady state: one request per call")
	t.Logf("3 more calls: %v", steady)

	jkt, err := reauth.JWKThumbprint(key.Public())
	require.NoError(t, err)
	assert.Equal(t, jkt, introspect(t, origin, log.last().AccessToken).Cnf.JKT, "the token is bound to the key")

	revoke(t, origin, oidcDPoPClient, oidcDPoPSecret, log.last().AccessToken)
	before = readOIDCCounts(t, origin, oidcDPoPClient)
	status, body = oidcGet(t, c, origin+oidcResourcePath)
	require.Equal(t, http.StatusOK, status, body)
	revoked := readOIDCCounts(t, origin, oidcDPoPClient).since(before)
	assert.Equal(t, oidcCounts{"POST /token": 1, "GET /resource": 2}, revoked, "invalid_token: one refresh, one retry")
	t.Logf("after revocation: %v", revoked)
}

// TestOIDCDPoPRefreshTokenWithClientKey: RefreshToken with DPoP and an
// Ed25519 client assertion; the provider rotates the refresh token and
// OnToken sees each one, and a Transport started from the saved one goes on.
func TestOIDCDPoPRefreshTokenWithClientKey(t *testing.T) {
	const client = "pkjwt-eddsa-client"
	origin := oidcOrigin(t)
	first := mintRefreshToken(t, origin, client)
	dk := p256(t)
	var log tokenLog
	opts := reauth.OAuth2Options{DPoP: dk, ClientKey: oidcClientKey(t, "client-ed25519.pem"), ClientKeyID: "eddsa-1", OnToken: log.onToken}
	cfg := &oauth2.Config{ClientID: client, Endpoint: oauth2.Endpoint{TokenURL: origin + oidcTokenPath}}
	rt := first
	for i := range 2 {
		c := &http.Client{Transport: &reauth.Transport{
			Credentials: reauth.RefreshToken(cfg, &oauth2.Token{RefreshToken: rt}, opts),
			Origins:     []string{origin},
		}}
		before := readOIDCCounts(t, origin, client)
		for range 2 {
			status, body := oidcGet(t, c, origin+oidcResourcePath)
			require.Equal(t, http.StatusOK, status, body)
			assert.JSONEq(t, `{"client_id":"pkjwt-eddsa-client","token_type":"DPoP"}`, body)
		}
		got := readOIDCCounts(t, origin, client).since(before)
		assert.Equal(t, oidcCounts{"POST /token": 2, "GET /resource": 3}, got, "Transport %d: a refresh with the endpoint's nonce, then the resource's nonce, then one request", i+1)
		t.Logf("Transport %d, 2 calls: %v", i+1, got)
		next := log.last().RefreshToken
		require.NotEmpty(t, next)
		assert.NotEqual(t, rt, next, "rotated, and OnToken has the new one")
		rt = next
	}
	assert.Len(t, log.toks, 2)

	// Client credentials with both, and the client's need of DPoP: without
	// it, the grant is refused once.
	cc := &clientcredentials.Config{ClientID: client, TokenURL: origin + oidcTokenPath}
	c := &http.Client{Transport: &reauth.Transport{Credentials: reauth.ClientCredentials(cc, opts), Origins: []string{origin}}}
	before := readOIDCCounts(t, origin, client)
	for range 3 {
		status, body := oidcGet(t, c, origin+oidcResourcePath)
		require.Equal(t, http.StatusOK, status, body)
	}
	got := readOIDCCounts(t, origin, client).since(before)
	assert.Equal(t, oidcCounts{"POST /token": 2, "GET /resource": 4}, got)
	t.Logf("client credentials, 3 calls: %v", got)

	noDPoP := opts
	noDPoP.DPoP = nil
	c = &http.Client{Transport: &reauth.Transport{Credentials: reauth.ClientCredentials(cc, noDPoP), Origins: []string{origin}}}
	before = readOIDCCounts(t, origin, client)
	_, err := c.Get(origin + oidcResourcePath)
	var te *reauth.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_grant", te.Code)
	assert.Equal(t, oidcCounts{"POST /token": 1}, readOIDCCounts(t, origin, client).since(before))
}

// TestOIDCDPoPClientNotAllowed: a client the server does not allow DPoP
// (invalid_dpop_proof at its token endpoint): a typed, final error after
// one token request, and no resource request.
func TestOIDCDPoPClientNotAllowed(t *testing.T) {
	origin := oidcOrigin(t)
	cfg := &clientcredentials.Config{ClientID: oidcNoDPoPClient, ClientSecret: oidcNoDPoPSecret, TokenURL: origin + oidcTokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{DPoP: p256(t)}),
		Origins:     []string{origin},
	}}
	before := readOIDCCounts(t, origin, oidcNoDPoPClient)
	_, err := c.Get(origin + oidcResourcePath)
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrInvalidDPoPProof)
	assert.ErrorIs(t, err, reauth.ErrFinal)
	var te *reauth.TokenError
	require.True(t, errors.As(err, &te))
	assert.Equal(t, "invalid_dpop_proof", te.Code)
	assert.NotContains(t, err.Error(), oidcNoDPoPSecret)
	got := readOIDCCounts(t, origin, oidcNoDPoPClient).since(before)
	assert.Equal(t, oidcCounts{"POST /token": 1}, got)
	t.Logf("no-dpop-client: %v", got)
}

// TestOIDCPrivateKeyJWTThroughTransport: client credentials with an ES256
// client assertion instead of a secret (Bearer tokens): one token request
// for three calls; a wrong key is refused once, with no retry.
func TestOIDCPrivateKeyJWTThroughTransport(t *testing.T) {
	const client = "pkjwt-es256-client"
	origin := oidcOrigin(t)
	cfg := &clientcredentials.Config{ClientID: client, TokenURL: origin + oidcTokenPath}
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{ClientKey: oidcClientKey(t, "client-es256.pem"), ClientKeyID: "es256-1"}),
		Origins:     []string{origin},
	}}
	before := readOIDCCounts(t, origin, client)
	for range 3 {
		status, body := oidcGet(t, c, origin+oidcResourcePath)
		require.Equal(t, http.StatusOK, status, body)
		assert.JSONEq(t, `{"client_id":"pkjwt-es256-client","token_type":"Bearer"}`, body)
	}
	got := readOIDCCounts(t, origin, client).since(before)
	assert.Equal(t, oidcCounts{"POST /token": 1, "GET /resource": 3}, got)
	t.Logf("pkjwt-es256-client, 3 calls: %v", got)

	c = &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{ClientKey: p256(t)}),
		Origins:     []string{origin},
	}}
	before = readOIDCCounts(t, origin, client)
	_, err := c.Get(origin + oidcResourcePath)
	var te *reauth.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_client", te.Code)
	assert.Equal(t, oidcCounts{"POST /token": 1}, readOIDCCounts(t, origin, client).since(before))
}
