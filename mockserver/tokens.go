package mockserver

import (
	"sync"
	"time"
)

// maxTokens bounds the token store; past it expired and revoked tokens are
// swept out.
const maxTokens = 100_000

type tokenKind int

const (
	accessToken tokenKind = iota
	refreshToken
)

// Tokens are good only where they were issued: an OAuth2 access token is
// not a registry token.
const (
	audienceOAuth2   = "oauth2"
	audienceRegistry = "registry"
	audienceDPoP     = "dpop" // DPoP-bound OAuth2 tokens of /dpop/…/token
)

// issuedToken is what the server remembers of a token it issued. It is
// never changed after issue except for revoked, so copies may share slices.
type issuedToken struct {
	kind     tokenKind
	audience string
	client   string              // OAuth2 client_id
	user     string              // resource owner; "" for client_credentials or anonymous
	scopes   []string            // OAuth2 scopes
	access   map[string][]string // registry: repository → actions granted
	acr      string
	authTime time.Time // when the user (or client) last authenticated
	issued   time.Time
	expires  time.Time // zero: never
	revoked  bool
	jkt      string // DPoP: the thumbprint of the key the token is bound to (RFC 9449 §6)
}

type tokenStore struct {
	mu sync.Mutex
	m  map[string]*issuedToken
}

// issue stores t under a new random token prefixed with prefix.
func (ts *tokenStore) issue(prefix string, t issuedToken) string {
	tok := prefix + randomToken(24)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.m) >= maxTokens {
		for k, v := range ts.m {
			if v.revoked || !v.expires.IsZero() && v.expires.Before(t.issued) {
				delete(ts.m, k)
			}
		}
	}
	ts.m[tok] = &t
	return tok
}

// live returns the token if it is of the kind and audience asked for, not
// revoked and not expired at now.
func (ts *tokenStore) live(tok string, kind tokenKind, audience string, now time.Time) (issuedToken, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.liveLocked(tok, kind, audience, now)
}

func (ts *tokenStore) liveLocked(tok string, kind tokenKind, audience string, now time.Time) (issuedToken, bool) {
	t, ok := ts.m[tok]
	if !ok || t.kind != kind || t.audience != audience || t.revoked || !t.expires.IsZero() && !now.Before(t.expires) {
		return issuedToken{}, false
	}
	return *t, true
}

// consume is live for a refresh token that is used up by this use
// (rotation): of concurrent uses exactly one succeeds.
func (ts *tokenStore) consume(tok string, audience string, now time.Time) (issuedToken, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.liveLocked(tok, refreshToken, audience, now)
	if ok {
		ts.m[tok].revoked = true
	}
	return t, ok
}

// get returns the token whatever its state.
func (ts *tokenStore) get(tok string) (issuedToken, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.m[tok]
	if !ok {
		return issuedToken{}, false
	}
	return *t, true
}

func (ts *tokenStore) revoke(tok string, kind tokenKind) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.m[tok]
	if !ok || t.kind != kind || t.revoked {
		return false
	}
	t.revoked = true
	return true
}

func (ts *tokenStore) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.m {
		t.revoked = true
	}
}

// RevokeAccessToken revokes an access token issued by /oauth2/token or
// /registry/token: from now on it gets 401 invalid_token. It reports whether
// tok was an access token not revoked before.
func (s *Server) RevokeAccessToken(tok string) bool { return s.tokens.revoke(tok, accessToken) }

// RevokeRefreshToken revokes a refresh token: the refresh_token grant now
// answers invalid_grant for it. It reports whether tok was a refresh token
// not revoked (or used up by rotation) before.
func (s *Server) RevokeRefreshToken(tok string) bool { return s.tokens.revoke(tok, refreshToken) }

// RevokeAll revokes every access and refresh token issued so far. The static
// tokens of Config.Bearer.Tokens stay good.
func (s *Server) RevokeAll() { s.tokens.revokeAll() }

// expiry returns the end of a lifetime starting at now; zero for none.
func expiry(now time.Time, lifetime time.Duration) time.Time {
	if lifetime <= 0 {
		return time.Time{}
	}
	return now.Add(lifetime)
}
