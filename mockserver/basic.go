package mockserver

import (
	"crypto/subtle"
	"net/http"
	"slices"
)

// basicChallenge is the Basic challenge of RFC 7617 §2 with the charset
// auth-param of §2.1.
func basicChallenge(realm string) string {
	return "Basic realm=" + quote(realm) + `, charset="UTF-8"`
}

// serveBasic is /basic/: any configured user gets 200, anything else 401
// with the challenge, malformed credentials 400.
func (s *Server) serveBasic(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("basic")
	user, p := s.checkBasic(r)
	if p != nil {
		refuseBasic(w, realm, p)
		return
	}
	writeOK(w, okInfo{Scenario: "basic", Path: r.URL.Path, User: user})
}

// checkBasic returns the user of valid Basic credentials, or a problem: 400
// for malformed credentials, 401 for absent, other-scheme or wrong ones.
func (s *Server) checkBasic(r *http.Request) (string, *problem) {
	c, p := readAuthorization(r)
	if p != nil {
		return "", p
	}
	if c == nil {
		return "", unauthorized("Basic credentials required")
	}
	if !c.Is("Basic") {
		return "", unauthorized("this resource takes Basic credentials, not %s", printable(c.Scheme))
	}
	user, password, p := decodeBasic(c)
	if p != nil {
		return "", p
	}
	if !s.checkPassword(user, password) {
		return "", unauthorized("unknown user or wrong password")
	}
	return user, nil
}

// refuseBasic answers p, with the Basic challenge when it is a 401.
func refuseBasic(w http.ResponseWriter, realm string, p *problem) {
	if p.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", basicChallenge(realm))
	}
	writeProblem(w, p)
}

func (s *Server) checkPassword(user, password string) bool {
	want, ok := s.cfg.Users[user]
	return ok && constantTimeEqual(want, password)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// identity is whom the special scenarios take a client for: a user of Basic
// credentials, or the holder of a Bearer token (static or OAuth2).
type identity struct {
	user   string
	client string
	scopes []string
}

// authorised reports whether id may see the restricted resources: an admin
// user, or a token with scope admin.
func (s *Server) authorised(id identity) bool {
	return s.isAdmin(id.user) || slices.Contains(id.scopes, "admin")
}

// identify accepts Basic credentials of a configured user, a static Bearer
// token, or a live OAuth2 access token. The problem is 400 for malformed
// credentials and 401 for anything else that does not identify the client.
func (s *Server) identify(r *http.Request) (identity, *problem) {
	c, p := readAuthorization(r)
	switch {
	case p != nil:
		return identity{}, p
	case c == nil:
		return identity{}, unauthorized("credentials required")
	case c.Is("Basic"):
		user, p := s.checkBasic(r)
		return identity{user: user}, p
	case c.Is("Bearer"):
		tok, p := bearerToken(c)
		if p != nil {
			return identity{}, p
		}
		if scopes, ok := s.cfg.Bearer.Tokens[tok]; ok {
			return identity{scopes: scopes}, nil
		}
		if t, ok := s.tokens.live(tok, accessToken, audienceOAuth2, s.clock.Now()); ok {
			return identity{user: t.user, client: t.client, scopes: t.scopes}, nil
		}
		return identity{}, unauthorized("the token is not valid")
	default:
		return identity{}, unauthorized("unsupported auth-scheme %s", printable(c.Scheme))
	}
}
