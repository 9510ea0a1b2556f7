package mockserver

import (
	"net/http"
	"strings"
)

// The special scenarios: the refusals and failures a client meets in the
// wild. Each takes Basic credentials of Config.Users (challenging for them)
// and also Bearer tokens, static or from /oauth2/token.

// serveForbidden is /forbidden/: an authenticated client that is not
// authorised gets 403 (RFC 9110 §15.5.4); an admin gets 200.
func (s *Server) serveForbidden(w http.ResponseWriter, r *http.Request) {
	id, p := s.identify(r)
	switch {
	case p != nil:
		refuseBasic(w, s.Realm("forbidden"), p)
	case !s.authorised(id):
		writeText(w, http.StatusForbidden, "authenticated, but not allowed to see this resource")
	default:
		writeOK(w, okInfo{Scenario: "forbidden", Path: r.URL.Path, User: id.user, Client: id.client, Scopes: id.scopes})
	}
}

// serveHidden is /hidden/: like /forbidden/, but a client that is not
// authorised gets 404, hiding that the resource exists (RFC 9110 §15.5.5).
func (s *Server) serveHidden(w http.ResponseWriter, r *http.Request) {
	id, p := s.identify(r)
	switch {
	case p != nil:
		refuseBasic(w, s.Realm("hidden"), p)
	case !s.authorised(id):
		writeText(w, http.StatusNotFound, "404 page not found")
	default:
		writeOK(w, okInfo{Scenario: "hidden", Path: r.URL.Path, User: id.user, Client: id.client, Scopes: id.scopes})
	}
}

// serveApache is /apache/: Basic only, and like Apache httpd with
// "Require user", a valid user who is not an admin gets 401 with a fresh
// challenge, not 403.
func (s *Server) serveApache(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("apache")
	user, p := s.checkBasic(r)
	switch {
	case p != nil:
		refuseBasic(w, realm, p)
	case !s.isAdmin(user):
		refuseBasic(w, realm, unauthorized("user %s is not allowed here", printable(user)))
	default:
		writeOK(w, okInfo{Scenario: "apache", Path: r.URL.Path, User: user})
	}
}

// serveNoChallenge is /no-challenge/: valid credentials get 200, anything
// else 401 without WWW-Authenticate, as many APIs do despite RFC 9110 §15.5.2.
func (s *Server) serveNoChallenge(w http.ResponseWriter, r *http.Request) {
	id, p := s.identify(r)
	switch {
	case p != nil && p.status == http.StatusBadRequest:
		writeProblem(w, p)
	case p != nil:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
	default:
		writeOK(w, okInfo{Scenario: "no-challenge", Path: r.URL.Path, User: id.user, Client: id.client, Scopes: id.scopes})
	}
}

// malformedChallenges are the WWW-Authenticate fields of /malformed/<kind>/.
// The first is what /malformed/ itself sends.
var malformedChallenges = []struct {
	kind, about string
	fields      []string
}{
	{"unterminated", "a quoted-string that never ends", []string{`Basic realm="malformed@reauth.mock`}},
	{"no-equals", "an auth-param without '='", []string{`Basic realm="malformed@reauth.mock", charset, title="x"`}},
	{"token68-param", "a token68 followed by an auth-param", []string{`Basic abc==, realm="malformed@reauth.mock"`}},
	{"duplicate-param", "one auth-param twice", []string{`Basic realm="malformed@reauth.mock", realm="other"`}},
	{"bad-char", "a character outside the grammar", []string{`Basic realm=malformed@reauth.mock{}`}},
	{"empty", "an empty WWW-Authenticate field", []string{``}},
	{"huge", "a 100 KiB WWW-Authenticate field", []string{`Basic realm="` + strings.Repeat("x", 100<<10) + `"`}},
	{"unsupported", "a well-formed challenge of an unknown scheme (RFC 9110 §11.6.1's Newauth)", []string{`Newauth realm="apps", type=1, title="Login to \"apps\""`}},
	{"mixed", "a malformed field line, then a good Basic challenge on a second line", []string{`Basic realm="unterminated`, basicChallenge("malformed@reauth.mock")}},
}

// serveMalformed is /malformed/<kind>/: 401 with a broken challenge. Valid
// Basic credentials still get 200, for clients that try anyway.
func (s *Server) serveMalformed(w http.ResponseWriter, r *http.Request) {
	kind, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/malformed/"), "/")
	m := malformedChallenges[0]
	for _, c := range malformedChallenges {
		if c.kind == kind {
			m = c
		}
	}
	user, p := s.checkBasic(r)
	switch {
	case p != nil && p.status == http.StatusBadRequest:
		writeProblem(w, p)
	case p != nil:
		for _, f := range m.fields {
			w.Header().Add("WWW-Authenticate", f)
		}
		writeText(w, http.StatusUnauthorized, "malformed challenge: "+m.about)
	default:
		writeOK(w, okInfo{Scenario: "malformed", Path: r.URL.Path, User: user})
	}
}
