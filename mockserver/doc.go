// Package mockserver is reauth's bundled authentication server: a faithful,
// configurable counterpart for testing API clients, reauth's own included.
//
// In a Go test it runs in-process on a loopback port, like httptest:
//
//	srv := mockserver.New(mockserver.DefaultConfig())
//	defer srv.Close()
//	resp, err := http.Get(srv.URL() + "/basic/")
//
// For clients in other languages, the command serves the same on a fixed
// port: go run ./mockserver/cmd/mockserver -addr 127.0.0.1:8089.
//
// Every scenario has its own path (GET / lists them all):
//
//	/basic/                   Basic (RFC 7617) with charset="UTF-8"
//	/bearer/, /bearer/admin   static Bearer tokens and RFC 6750 errors (400, 401, 403 with scope)
//	/digest/…                 Digest (RFC 7616): MD5, SHA-256, SHA-512-256, -sess, auth-int,
//	                          userhash, stale nonces, nextnonce, rspauth (see [Server.Scenarios])
//	/oauth2/token             client_credentials, password and refresh_token grants (RFC 6749)
//	/oauth2/revoke            token revocation (RFC 7009)
//	/oauth2/resource          takes live access tokens of /oauth2/token
//	/oauth2/resource/admin    the same, with scope admin (else 403 insufficient_scope)
//	/v2/…, /registry/token    a Docker/OCI registry and its token realm, scopes per repository
//	/forbidden/, /hidden/     403, and 404 hiding a forbidden resource
//	/apache/                  valid but unauthorised user: 401 with a fresh challenge
//	/no-challenge/            401 without WWW-Authenticate
//	/malformed/<kind>/        broken challenges
//	/stepup/, /stepup/max-age/  RFC 9470 step-up (acr_values, max_age)
//	/status/429/, /status/503/  FailFirst refusals with Retry-After, then success
//
// With Config.Proxy.Enabled ([ProxyConfig]; the command's -proxy flag) the
// same listener is also a forward proxy: GET http://127.0.0.1:…/… in
// absolute-form is forwarded and CONNECT 127.0.0.1:… opens a tunnel, to
// loopback targets only (anything else: 403, never dialled). It answers 407
// with Proxy-Authenticate for Basic, Digest or both, checks the users of
// Config.Users, and never forwards Proxy-Authorization. A client sets the
// server's URL as its proxy, and may use the server as origin as well:
//
//	cfg := mockserver.DefaultConfig()
//	cfg.Proxy = mockserver.ProxyConfig{Enabled: true, Schemes: []string{"Digest"}}
//	srv := mockserver.New(cfg)
//	proxyURL, _ := url.Parse(srv.URL())
//	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
//
// Proxy requests are logged with Scenario "proxy" and a Target
// ([Server.ProxyRequests]); [Request.ProxyCredential] shows the redacted
// Proxy-Authorization.
//
// The users, realms, tokens and rules are configuration ([Config]).
// [DefaultConfig] has these users (passwords after the slash):
//
//	alice / wonderland          an admin: allowed on /forbidden/, /hidden/, /apache/
//	bob / builder               a valid user who is not an admin
//	Jäsøn Doe / Secret, or not?  non-ASCII, as in RFC 7616 §3.9.2
//
// static Bearer tokens mock-token-read (scope read) and mock-token-admin
// (read admin), the OAuth2 client reauth-client / reauth-secret, and the
// registry repositories library/hello (public pull, alice pushes) and
// team/app (alice and bob pull, alice pushes).
//
// Tests steer time with a [ManualClock] (token expiry, nonce lifetime,
// max_age), revoke tokens ([Server.RevokeAccessToken], [Server.RevokeAll]),
// inject token endpoint faults ([Server.SetTokenEndpointFailure]) and assert
// on the request log ([Server.Requests]), which shows credentials only in
// redacted form.
//
// Malformed Authorization fields get a clear 400 (or 401) and bounded work:
// fields over [MaxAuthorizationBytes] are refused unparsed, header sections
// over Config.MaxHeaderBytes get 431, bodies over [MaxBodyBytes] 413.
package mockserver
