package mockserver

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// oauthError is an error response of RFC 6749 §5.2.
type oauthError struct {
	status int
	code   string // invalid_request, invalid_client, invalid_grant, unsupported_grant_type, invalid_scope
	desc   string
}

func oauthFail(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func (s *Server) writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		// RFC 6749 §5.2: a 401 invalid_client carries a challenge for the
		// scheme the client may authenticate with. Its realm is not the
		// resource's: client credentials and access tokens are different
		// protection spaces.
		w.Header().Set("WWW-Authenticate", basicChallenge(s.Realm("oauth2/token")))
	}
	noStore(w)
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// noStore marks a response carrying tokens as uncacheable (RFC 6749 §5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// tokenResponse is the successful response of RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// serveOAuth2Token is /oauth2/token: the client_credentials, password and
// refresh_token grants of RFC 6749 §4.4, §4.3 and §6.
func (s *Server) serveOAuth2Token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeOAuthError(w, oauthFail(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST (RFC 6749 §3.2)"))
		return
	}
	if s.applyTokenFailure(w, r) {
		return
	}
	form, e := parseTokenForm(r)
	if e == nil {
		var client string
		client, e = s.authenticateClient(r, form)
		if e == nil {
			e = s.grant(w, form, client, tokenBinding{})
		}
	}
	if e != nil {
		s.writeOAuthError(w, e)
	}
}

// tokenBinding is what a grant binds its tokens to: nothing (Bearer
// tokens of /oauth2/token), or a DPoP key (RFC 9449 §5).
type tokenBinding struct {
	jkt   string // the thumbprint of the proof's key; "" for Bearer
	nonce string // the DPoP-Nonce to send with the answer, if any
}

// grant answers a token request from an authenticated client.
func (s *Server) grant(w http.ResponseWriter, form url.Values, client string, bind tokenBinding) *oauthError {
	audience, tokenType := audienceOAuth2, "Bearer"
	if bind.jkt != "" {
		audience, tokenType = audienceDPoP, "DPoP"
	}
	now := s.clock.Now()
	var t issuedToken // the access token to issue
	withRefresh := false
	switch gt := form.Get("grant_type"); gt {
	case "":
		return oauthFail(http.StatusBadRequest, "invalid_request", "grant_type is missing")
	case "client_credentials":
		scopes, e := s.grantableScopes(form.Get("scope"), s.cfg.OAuth2.Scopes)
		if e != nil {
			return e
		}
		t = issuedToken{client: client, scopes: scopes, acr: firstField(form.Get("acr_values")), authTime: now}
		withRefresh = s.cfg.OAuth2.ClientCredentialsRefresh
	case "password":
		user := form.Get("username")
		if user == "" {
			return oauthFail(http.StatusBadRequest, "invalid_request", "username is missing")
		}
		if !s.checkPassword(user, form.Get("password")) {
			return oauthFail(http.StatusBadRequest, "invalid_grant", "wrong username or password")
		}
		scopes, e := s.grantableScopes(form.Get("scope"), s.cfg.OAuth2.Scopes)
		if e != nil {
			return e
		}
		t = issuedToken{client: client, user: user, scopes: scopes, acr: firstField(form.Get("acr_values")), authTime: now}
		withRefresh = true
	case "refresh_token":
		var scopes []string
		old, e := s.redeemRefreshToken(form.Get("refresh_token"), audience, client, now, func(old issuedToken) (e *oauthError) {
			scopes = old.scopes
			if form.Has("scope") {
				// RFC 6749 §6: a narrower scope may be asked for, never a wider one.
				scopes, e = s.grantableScopes(form.Get("scope"), old.scopes)
			}
			return e
		})
		if e != nil {
			return e
		}
		t = issuedToken{client: client, user: old.user, scopes: scopes, acr: old.acr, authTime: old.authTime}
		withRefresh = s.cfg.OAuth2.RotateRefreshTokens
	default:
		return oauthFail(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+printable(gt)+" is not supported here")
	}

	t.kind, t.audience, t.issued, t.jkt = accessToken, audience, now, bind.jkt
	t.expires = expiry(now, s.cfg.OAuth2.AccessTokenLifetime)
	resp := tokenResponse{TokenType: tokenType, Scope: strings.Join(t.scopes, " ")}
	resp.AccessToken, resp.ExpiresIn = s.issueAccessToken(client, t, now)
	if withRefresh {
		rt := t
		rt.kind, rt.expires = refreshToken, expiry(now, s.cfg.OAuth2.RefreshTokenLifetime)
		resp.RefreshToken = s.tokens.issue("mock-rt-", rt)
	}
	s.tokenGrants.Add(1)
	if bind.nonce != "" {
		w.Header().Set("DPoP-Nonce", bind.nonce)
	}
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// issueAccessToken issues t, or in replay mode hands back the last access
// token issued to the client. It returns the token and its expires_in.
func (s *Server) issueAccessToken(client string, t issuedToken, now time.Time) (string, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastAccess[client]; ok && s.tokenReplay {
		if old, ok := s.tokens.get(last); ok {
			if old.expires.IsZero() {
				return last, 0
			}
			return last, max(1, int64(old.expires.Sub(now)/time.Second))
		}
	}
	tok := s.tokens.issue("mock-at-", t)
	s.lastAccess[client] = tok
	return tok, lifetimeSeconds(s.cfg.OAuth2.AccessTokenLifetime)
}

// redeemRefreshToken checks a refresh token presented by client, then the
// rest of the request with check, and only then, when refresh tokens
// rotate, uses it up: a refused request leaves the token good.
func (s *Server) redeemRefreshToken(rt, audience, client string, now time.Time, check func(issuedToken) *oauthError) (issuedToken, *oauthError) {
	if rt == "" {
		return issuedToken{}, oauthFail(http.StatusBadRequest, "invalid_request", "refresh_token is missing")
	}
	old, ok := s.tokens.live(rt, refreshToken, audience, now)
	if ok && old.client != client {
		return issuedToken{}, oauthFail(http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
	}
	if ok && check != nil {
		if e := check(old); e != nil {
			return issuedToken{}, e
		}
	}
	if ok && s.cfg.OAuth2.RotateRefreshTokens {
		old, ok = s.tokens.consume(rt, audience, now)
	}
	if !ok {
		return issuedToken{}, oauthFail(http.StatusBadRequest, "invalid_grant", "the refresh token is not valid: unknown, expired, revoked or already used")
	}
	return old, nil
}

// grantableScopes parses a scope parameter (RFC 6749 §3.3) and checks every
// scope is among allowed.
func (s *Server) grantableScopes(scope string, allowed []string) ([]string, *oauthError) {
	scopes := strings.Fields(scope)
	for _, sc := range scopes {
		if !slices.Contains(allowed, sc) {
			return nil, oauthFail(http.StatusBadRequest, "invalid_scope", "scope "+printable(sc)+" cannot be granted")
		}
	}
	return scopes, nil
}

// parseTokenForm reads an application/x-www-form-urlencoded body
// (RFC 6749 §3.2), refusing parameters given more than once.
func parseTokenForm(r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthFail(http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded (RFC 6749 §3.2)")
	}
	body, _ := io.ReadAll(r.Body) // already read whole and bounded by ServeHTTP
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthFail(http.StatusBadRequest, "invalid_request", "the body is not valid form-urlencoded data")
	}
	for name, values := range form {
		if len(values) > 1 {
			return nil, oauthFail(http.StatusBadRequest, "invalid_request", "parameter "+printable(name)+" is given more than once (RFC 6749 §3.2)")
		}
	}
	return form, nil
}

// authenticateClient checks the client's credentials, sent either with
// Basic or as client_id and client_secret in the body, not both
// (RFC 6749 §2.3.1).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (string, *oauthError) {
	c, p := readAuthorization(r)
	if p != nil {
		return "", oauthFail(http.StatusBadRequest, "invalid_request", p.msg)
	}
	if form.Has("client_assertion_type") || form.Has("client_assertion") {
		if c != nil || form.Has("client_secret") {
			return "", oauthFail(http.StatusBadRequest, "invalid_request", "the client authenticated twice: a client assertion and a secret (RFC 6749 §2.3)")
		}
		return s.authenticateAssertion(r, form)
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if c != nil {
		if !c.Is("Basic") {
			return "", oauthFail(http.StatusUnauthorized, "invalid_client", "client authentication takes Basic, not "+printable(c.Scheme))
		}
		if form.Has("client_secret") {
			return "", oauthFail(http.StatusBadRequest, "invalid_request", "the client authenticated twice: Basic and client_secret (RFC 6749 §2.3)")
		}
		user, password, p := decodeBasic(c)
		if p != nil {
			return "", oauthFail(http.StatusBadRequest, "invalid_request", p.msg)
		}
		// The client_id and secret are form-urlencoded before Basic (§2.3.1).
		hid, err1 := url.QueryUnescape(user)
		hsecret, err2 := url.QueryUnescape(password)
		if err1 != nil || err2 != nil {
			return "", oauthFail(http.StatusBadRequest, "invalid_request", "Basic client credentials are not form-urlencoded (RFC 6749 §2.3.1)")
		}
		if id != "" && id != hid {
			return "", oauthFail(http.StatusBadRequest, "invalid_request", "client_id in the body differs from the Basic credentials")
		}
		id, secret = hid, hsecret
	} else if id == "" || !form.Has("client_secret") {
		return "", oauthFail(http.StatusUnauthorized, "invalid_client", "client authentication required: Basic, or client_id and client_secret")
	}
	want, ok := s.cfg.OAuth2.Clients[id]
	if !ok || !constantTimeEqual(want, secret) {
		return "", oauthFail(http.StatusUnauthorized, "invalid_client", "unknown client or wrong client secret")
	}
	return id, nil
}

// serveOAuth2Revoke is /oauth2/revoke, token revocation per RFC 7009 §2:
// the client's own access or refresh token; 200 whether or not it was live.
func (s *Server) serveOAuth2Revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeOAuthError(w, oauthFail(http.StatusMethodNotAllowed, "invalid_request", "revocation takes POST (RFC 7009 §2.1)"))
		return
	}
	form, e := parseTokenForm(r)
	var client string
	if e == nil {
		client, e = s.authenticateClient(r, form)
	}
	if e == nil && form.Get("token") == "" {
		e = oauthFail(http.StatusBadRequest, "invalid_request", "token is missing")
	}
	if e != nil {
		s.writeOAuthError(w, e)
		return
	}
	tok := form.Get("token")
	if t, ok := s.tokens.get(tok); ok && t.audience == audienceOAuth2 && t.client == client {
		s.tokens.revoke(tok, t.kind)
	}
	w.WriteHeader(http.StatusOK)
}

// serveOAuth2Resource is /oauth2/resource: it takes live access tokens of
// /oauth2/token and nothing else. /oauth2/resource/admin needs scope admin.
func (s *Server) serveOAuth2Resource(w http.ResponseWriter, r *http.Request) {
	realm := s.Realm("oauth2")
	t, e := s.checkAccessToken(r)
	if e != nil {
		writeBearerError(w, realm, e)
		return
	}
	admin := r.URL.Path == "/oauth2/resource/admin" || strings.HasPrefix(r.URL.Path, "/oauth2/resource/admin/")
	if admin && !slices.Contains(t.scopes, "admin") {
		// RFC 6750 §3.1: the token is good but lacks the scope; 403.
		writeBearerError(w, realm, &bearerError{
			status: http.StatusForbidden, code: "insufficient_scope",
			desc: "the token lacks scope admin", extra: []string{"scope", "admin"},
		})
		return
	}
	writeOK(w, okInfo{Scenario: "oauth2", Path: r.URL.Path, Client: t.client, User: t.user, Scopes: t.scopes, ACR: t.acr})
}

// checkAccessToken returns the live OAuth2 access token of the request, or
// the RFC 6750 error saying why there is none.
func (s *Server) checkAccessToken(r *http.Request) (issuedToken, *bearerError) {
	tok, e := readBearer(r)
	if e != nil {
		return issuedToken{}, e
	}
	now := s.clock.Now()
	if t, ok := s.tokens.live(tok, accessToken, audienceOAuth2, now); ok {
		return t, nil
	}
	t, ok := s.tokens.get(tok)
	switch {
	case !ok || t.kind != accessToken || t.audience != audienceOAuth2:
		return issuedToken{}, bearerInvalidToken("the access token is unknown here")
	case t.revoked:
		return issuedToken{}, bearerInvalidToken("the access token was revoked")
	default:
		return issuedToken{}, bearerInvalidToken("the access token expired")
	}
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func lifetimeSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
