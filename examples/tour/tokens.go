package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// oauth2ClientCredentials returns reauth's OAuth2 client-credentials
// credentials for the mock's client reauth-client, token endpoint
// /oauth2/token.
func oauth2ClientCredentials() func(*env) (reauth.Credentials, error) {
	return func(e *env) (reauth.Credentials, error) {
		return reauth.ClientCredentials(&clientcredentials.Config{
			ClientID:     oauth2Client,
			ClientSecret: oauth2Secret,
			TokenURL:     e.url + "/oauth2/token",
		}, reauth.OAuth2Options{}), nil
	}
}

// dpopClientCredentials returns reauth's OAuth2 client-credentials
// credentials with a new DPoP key (RFC 9449), for the mock's DPoP token
// endpoint tokenPath.
func dpopClientCredentials(tokenPath string) func(*env) (reauth.Credentials, error) {
	return func(e *env) (reauth.Credentials, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return reauth.ClientCredentials(&clientcredentials.Config{
			ClientID:     oauth2Client,
			ClientSecret: oauth2Secret,
			TokenURL:     e.url + tokenPath,
		}, reauth.OAuth2Options{DPoP: key, Now: e.clock.Now}), nil // proofs dated by the mock's clock, which the tour moves
	}
}

// registry returns reauth.Registry(user, password) ("" "" is anonymous).
func registry(user, password string) func(*env) (reauth.Credentials, error) {
	return func(*env) (reauth.Credentials, error) { return reauth.Registry(user, password), nil }
}

func tokenScenarios() []scenario {
	return []scenario{
		{variant: "client credentials", path: "/oauth2/resource", creds: oauth2ClientCredentials(),
			want:  succeeds(http.StatusOK, 1, 1),
			shows: "token fetched once, sent from the first request"},
		{variant: "refresh on 401", path: "/oauth2/resource", creds: oauth2ClientCredentials(),
			before: revokeBeforeSecondCall,
			want:   succeeds(http.StatusOK, 1, 2),
			shows:  "a revoked token is replaced once, then retried"},
		{variant: "no admin scope", path: "/oauth2/resource/admin", creds: oauth2ClientCredentials(),
			want: fails(1, reauth.ErrForbidden).
				and(bearerErrorIs("scope", func(b reauth.BearerError) string { return b.Scope }, "admin")),
			shows: "insufficient_scope on 403: final, no refresh"},
		{variant: "as bob", path: "/v2/team/app/tags/list", creds: registry(bob, bobPassword),
			want:  succeeds(http.StatusOK, 2, 1),
			shows: "token for the scope asked, then held"},
		{variant: "anonymous", path: "/v2/library/hello/tags/list", creds: registry("", ""),
			want:  succeeds(http.StatusOK, 2),
			shows: "anonymous token for a public repository"},
		{variant: "as bob", method: http.MethodPost, path: "/v2/team/app/blobs/uploads/",
			creds: registry(bob, bobPassword),
			want:  fails(2, reauth.ErrForbidden).and(registryErrorIs("DENIED")),
			shows: "403 DENIED is final, registry error surfaced"},
	}
}
