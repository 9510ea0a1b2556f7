package mockserver

import (
	"net/http"
	"slices"
	"strings"
)

// bearerError is an RFC 6750 §3 refusal. A zero code is the bare challenge
// of §3.1 for a request without (usable) credentials.
type bearerError struct {
	status int
	code   string // invalid_request, invalid_token, insufficient_scope, insufficient_user_authentication
	desc   string
	extra  []string // more auth-params: name, value, name, value…
}

func bearerMissing(desc string) *bearerError {
	return &bearerError{status: http.StatusUnauthorized, desc: desc}
}

func bearerInvalidRequest(desc string) *bearerError {
	return &bearerError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func bearerInvalidToken(desc string) *bearerError {
	return &bearerError{status: http.StatusUnauthorized, code: "invalid_token", desc: desc}
}

// writeBearerError answers e with its WWW-Authenticate challenge; the body
// is JSON {"error", "error_description"} when there is an error code.
func writeBearerError(w http.ResponseWriter, realm string, e *bearerError) {
	var b strings.Builder
	b.WriteString("Bearer realm=" + quote(realm))
	if e.code != "" {
		b.WriteString(", error=" + quote(e.code) + ", error_description=" + quote(e.desc))
	}
	for i := 0; i+1 < len(e.extra); i += 2 {
		b.WriteString(", " + e.extra[i] + "=" + quote(e.extra[i+1]))
	}
	w.Header().Set("WWW-Authenticate", b.String())
	if e.code == "" {
		writeText(w, e.status, e.desc)
		return
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// readBearer returns the token of the request's Bearer credentials
// (RFC 6750 §2.1). No credentials, or another scheme, is the bare 401 of
// §3.1; malformed credentials are invalid_request (400).
func readBearer(r *http.Request) (string, *bearerError) {
	c, p := readAuthorization(r)
	if p != nil {
		return "", bearerInvalidRequest(p.msg)
	}
	if c == nil {
		return "", bearerMissing("Bearer token required")
	}
	if !c.Is("Bearer") {
		return "", bearerMissing("this resource takes Bearer tokens, not " + printable(c.Scheme))
	}
	tok, p := bearerToken(c)
	if p != nil {
		return "", bearerInvalidRequest(p.msg)
	}
	return tok, nil
}

// serveBearer is /bearer/: the static tokens of Config.Bearer.Tokens.
// /bearer/admin needs scope admin.
func (s *Server) serveBearer(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("bearer")
	tok, e := readBearer(r)
	if e != nil {
		writeBearerError(w, realm, e)
		return
	}
	scopes, ok := s.cfg.Bearer.Tokens[tok]
	if !ok {
		writeBearerError(w, realm, bearerInvalidToken("the access token is not valid"))
		return
	}
	if r.URL.Path == "/bearer/admin" || strings.HasPrefix(r.URL.Path, "/bearer/admin/") {
		if !slices.Contains(scopes, "admin") {
			writeBearerError(w, realm, &bearerError{
				status: http.StatusForbidden, code: "insufficient_scope",
				desc: "the token lacks scope admin", extra: []string{"scope", "admin"},
			})
			return
		}
	}
	writeOK(w, okInfo{Scenario: "bearer", Path: r.URL.Path, Scopes: scopes})
}
