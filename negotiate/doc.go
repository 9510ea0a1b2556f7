// Package negotiate is the Negotiate auth-scheme (RFC 4559: SPNEGO with
// Kerberos 5, RFC 4178 and RFC 4121) for reauth, in a module of its own so
// that gokrb5 and its dependencies stay out of the core module.
//
// [New] returns reauth.Credentials for a gokrb5 client (from a keytab, a
// password or a credential cache), for origins (Transport.Credentials) and
// proxies (Transport.ProxyCredentials, plain http and CONNECT alike).
//
// Each Negotiate token carries a Kerberos AP-REQ for the service principal
// "HTTP/<host>" (see [WithSPN], [CanonicalizeHost]) with mutual
// authentication required, and the server's answer on the final response
// (WWW-Authenticate: Negotiate <AP-REP>) is verified with that request's
// session key: an answer that does not verify is an error matching
// [ErrMutualAuthentication] and the response is withheld. A challenge is
// answered once; a refused token ends the request ([ErrTokenRefused]).
//
// NTLM is not offered: its handshake is bound to one connection, which fights
// connection pooling, and Microsoft is retiring it. Use Kerberos.
package negotiate
