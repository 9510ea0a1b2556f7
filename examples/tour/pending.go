package main

import (
	"net/http"

	"github.com/reauth/reauth"
)

// ---------------------------------------------------------------------------
// Not yet supported: OAuth2 and registry credentials are being written.
//
// Their rows below already say what DESIGN.md expects. To enable them once
// reauth.OAuth2 and reauth.Registry are merged, make oauth2ClientCredentials
// and registry return the credentials (the line marked ENABLE in each); the
// rows then run and are checked like every other.
// ---------------------------------------------------------------------------

// oauth2ClientCredentials returns reauth's OAuth2 client-credentials
// credentials for the mock's client reauth-client, token endpoint
// /oauth2/token; nil while reauth has none.
func oauth2ClientCredentials() func(*env) (reauth.Credentials, error) {
	// ENABLE: return func(e *env) (reauth.Credentials, error) {
	//	return reauth.OAuth2(clientcredentials.Config{ClientID: oauth2Client, ClientSecret: oauth2Secret,
	//		TokenURL: e.url + "/oauth2/token"}.TokenSource(ctx)), nil // or the client-credentials constructor
	// }
	return nil
}

// registry returns reauth.Registry(user, password) ("" "" is anonymous); nil
// while reauth has none.
func registry(user, password string) func(*env) (reauth.Credentials, error) {
	// ENABLE: return func(*env) (reauth.Credentials, error) { return reauth.Registry(user, password), nil }
	_, _ = user, password
	return nil
}

func pendingScenarios() []scenario {
	return []scenario{
		{variant: "client credentials", path: "/oauth2/resource", creds: oauth2ClientCredentials(), needs: "reauth.OAuth2",
			want:  succeeds(http.StatusOK, 1, 1),
			shows: "token fetched once, sent from the first request"},
		{variant: "refresh on 401", path: "/oauth2/resource", creds: oauth2ClientCredentials(), needs: "reauth.OAuth2",
			before: revokeBeforeSecondCall,
			want:   succeeds(http.StatusOK, 1, 2),
			shows:  "a revoked token is replaced once, then retried"},
		{variant: "as bob", path: "/v2/team/app/tags/list", creds: registry(bob, bobPassword), needs: "reauth.Registry",
			want:  succeeds(http.StatusOK, 2, 1),
			shows: "token for the scope asked, then held"},
		{variant: "anonymous", path: "/v2/library/hello/tags/list", creds: registry("", ""), needs: "reauth.Registry",
			want:  succeeds(http.StatusOK, 2),
			shows: "anonymous token for a public repository"},
		{variant: "as bob", method: http.MethodPost, path: "/v2/team/app/blobs/uploads/",
			creds: registry(bob, bobPassword), needs: "reauth.Registry",
			want:  fails(2, reauth.ErrForbidden).and(registryErrorIs("DENIED")),
			shows: "403 DENIED is final, registry error surfaced"},
	}
}
