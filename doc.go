// Package reauth is an HTTP authentication layer for Go API clients: an
// [http.RoundTripper], [Transport], that answers 401 and 407 challenges with
// credentials, treats 403 as final, never sends refused credentials again and
// sends credentials only to the origins they are bound to, the way RFC 9110
// §11 and §15.5 say a client should.
//
// # Getting started
//
// Put a [Transport] under an [http.Client], give it credentials and the
// origins they may go to, and use the client as usual:
//
//	client := &http.Client{Transport: &reauth.Transport{
//		Credentials: reauth.Basic("alice", os.Getenv("API_PASSWORD")),
//		Origins:     []string{"https://api.example.com"}, // the only origin that gets them
//	}}
//	resp, err := client.Get("https://api.example.com/v1/items")
//	var fe *reauth.ForbiddenError
//	switch {
//	case errors.As(err, &fe): // 403: final, never retried
//	case errors.Is(err, reauth.ErrUnauthorized): // a 401 reauth could not answer
//	case err != nil: // the network, a token endpoint, a configuration error
//	}
//
// The package's examples (on Transport, NewClient, Basic, Bearer, Digest,
// ClientCredentials, …) run this against test servers.
//
// [NewClient] wraps the same Transport in a go-retryablehttp client that backs
// off on 429, 5xx and network errors, and never retries an auth failure.
//
// # What the Transport does with each status
//
// For a request to a bound origin (one listed in Transport.Origins):
//
//   - 401 with WWW-Authenticate: every challenge is parsed ([ParseChallenges]);
//     the credentials answer the strongest one they support with fields that
//     differ from those refused, and the request is retried: once per
//     challenge kind, and once more when the server asks only for a fresh
//     nonce (at most 3 requests per leg). With nothing new to offer, or
//     past that ceiling, RoundTrip returns an
//     [*UnauthorizedError] (errors.Is(err, [ErrUnauthorized])) carrying the
//     challenges, the Bearer error fields and the start of the body.
//   - 401 without a challenge: a refusal of what was sent; token credentials
//     may fetch a new token once, others give up with an [*UnauthorizedError].
//   - 403: final at once, a [*ForbiddenError] (errors.Is(err, [ErrForbidden])),
//     never retried, also not by [NewClient]. Bearer's insufficient_scope gives
//     the scope required; a registry's error body gives RegistryErrors().
//   - 400 with Bearer error="invalid_request": final, an [*InvalidRequestError].
//   - 407 with Proxy-Authenticate from the proxy: answered like a 401 with
//     Transport.ProxyCredentials and Proxy-Authorization, with a retry of its
//     own; the CONNECT of an https request is answered through
//     [ConfigureProxy] and fails with an [*UnauthorizedError] (Method
//     CONNECT) or, for a 403, a [*ForbiddenError] with Proxy set.
//   - Anything else, 404 included, is returned as it is.
//
// The typed errors match through the *url.Error that [http.Client] wraps
// around them and through go-retryablehttp. Set Transport.ReturnResponse to
// get the final response itself instead of an error. Requests to other
// origins pass through untouched: a redirect elsewhere never carries
// credentials and its challenges are not answered.
//
// The project's DESIGN.md states these rules and the invariants the tests
// hold the Transport to; the README has the details of each scheme.
//
// # Which constructor for which scheme
//
//   - [Basic] (RFC 7617): user-id and password, sent once the origin has
//     challenged for Basic; [Preemptive] sends them from the first request.
//   - [Bearer] (RFC 6750): a static token, sent from the first request.
//   - [Digest], [DigestWithOptions] (RFC 7616): MD5, SHA-256 and SHA-512-256,
//     qop auth and auth-int, userhash, rspauth verified. [DigestAuthorization]
//     is the same computation as a pure function.
//   - [OAuth2], [OAuth2WithOptions]: any [golang.org/x/oauth2.TokenSource];
//     [ClientCredentials] and [RefreshToken] for the two grants an API client
//     uses. A refused token is replaced once, one fetch for all goroutines;
//     [OAuth2Options] adds step-up ([StepUpChallenge]) and OnToken for
//     rotated refresh tokens.
//   - [Registry], [RegistryWithOptions]: the Docker/OCI registry token flow
//     (a token per repository scope from the registry's realm).
//   - Your own scheme: implement [Credentials] (Authorize, Refused, Observe)
//     in one file; the Transport keeps origins, the retry ceiling, the
//     plain-http rule, redaction and bodies.
//
// Proxy credentials are any of these, set as Transport.ProxyCredentials (and
// given to [ConfigureProxy] for https through a bare [http.Transport]).
//
// # Observing
//
// Transport.Logger gets every auth decision at debug level and
// Transport.OnEvent the same as [Event] values. No error, log line or event
// ever holds a password, token or digest; URLs are shown without their query
// or userinfo.
package reauth
