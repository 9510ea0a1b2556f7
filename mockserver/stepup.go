package mockserver

import (
	"net/http"
	"strconv"
	"strings"
)

// serveStepUp is /stepup/ and /stepup/max-age/, the step-up challenges of
// RFC 9470 §3 for OAuth2 access tokens of /oauth2/token. /stepup/ needs a
// token whose acr is Config.StepUp.ACR; /stepup/max-age/ one whose
// authentication is at most Config.StepUp.MaxAge old. The token endpoint
// issues a token with an acr when the request carries acr_values.
func (s *Server) serveStepUp(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("stepup")
	t, e := s.checkAccessToken(r)
	if e != nil {
		writeBearerError(w, realm, e)
		return
	}
	if r.URL.Path == "/stepup/max-age" || strings.HasPrefix(r.URL.Path, "/stepup/max-age/") {
		if maxAge := s.cfg.StepUp.MaxAge; maxAge > 0 && s.clock.Now().Sub(t.authTime) > maxAge {
			writeBearerError(w, realm, &bearerError{
				status: http.StatusUnauthorized, code: "insufficient_user_authentication",
				desc:  "more recent authentication is required",
				extra: []string{"max_age", strconv.FormatInt(lifetimeSeconds(maxAge), 10)},
			})
			return
		}
	} else if t.acr != s.cfg.StepUp.ACR {
		writeBearerError(w, realm, &bearerError{
			status: http.StatusUnauthorized, code: "insufficient_user_authentication",
			desc:  "a different authentication level is required",
			extra: []string{"acr_values", s.cfg.StepUp.ACR},
		})
		return
	}
	writeOK(w, okInfo{Scenario: "stepup", Path: r.URL.Path, Client: t.client, User: t.user, Scopes: t.scopes, ACR: t.acr})
}
