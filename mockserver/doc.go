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
// Every scenario has its own path, e.g. /basic/ for Basic (RFC 7617) or
// /digest/sha-256/ for one Digest (RFC 7616) variant, served with and
// without its trailing slash. GET / lists them all, with the challenge each
// sends, what it does and how curl reaches it; [Server.Scenarios] returns
// the same list. Both come from one table in scenarios.go, which is also
// what routes requests: this comment does not repeat it.
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
// DPoP (RFC 9449) and private_key_jwt (RFC 7523 §2.2) are checked by the
// server's own JOSE code, not reauth's: proofs are verified against their
// jwk (ES256, EdDSA, PS256), jtis of proofs and client assertions are
// remembered to refuse replays, and /dpop/nonce/… require nonces that
// rotate (Config.DPoP, [Server.RotateDPoPNonces]). Clients authenticate
// with assertions when Config.OAuth2.ClientKeys holds their public key.
// Likewise the server reads Authorization fields with its own parser.
//
// Malformed Authorization fields get a clear 400 (or 401) and bounded work:
// fields over [MaxAuthorizationBytes] are refused unparsed, header sections
// over Config.MaxHeaderBytes get 431, bodies over [MaxBodyBytes] 413.
package mockserver
