// Package negotiate is the Negotiate auth-scheme (RFC 4559: SPNEGO with
// Kerberos 5, RFC 4178 and RFC 4121) for reauth, in a module of its own so
// that gokrb5 and its dependencies stay out of the core module.
//
// Each Negotiate token carries a Kerberos AP-REQ for the service principal
// "HTTP/<host>" with mutual authentication required, and the server's answer
// on the final response (WWW-Authenticate: Negotiate <AP-REP>) is verified
// with that request's session key: an answer that does not verify is an error
// matching [ErrMutualAuthentication].
//
// NTLM is not offered: its handshake is bound to one connection, which fights
// connection pooling, and Microsoft is retiring it. Use Kerberos.
package negotiate
