// Package reauth is an HTTP authentication layer for Go API clients: an
// [http.RoundTripper] that understands 401, 403 and 407 the way RFC 9110
// says a client should.
//
// On 401 the [Transport] parses every WWW-Authenticate challenge
// ([ParseChallenges]), lets its [Credentials] answer the strongest one they
// support with credentials that differ from those just refused, and retries
// once. 403 is final and surfaces as [*ForbiddenError]. 407 from a proxy is
// answered the same way with the Transport's ProxyCredentials. Credentials are
// sent only to the origins they are bound to.
package reauth
