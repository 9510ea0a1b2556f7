package mockserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// The registry scenario follows the Docker/OCI token authentication flow:
// /v2/ answers 401 with a Bearer challenge naming the token realm, service
// and scope; /registry/token grants a token for the part of the scope the
// user may have; /v2/ then checks the token's access per repository.

// registryError is one entry of the registry error body
// {"errors":[{"code":…,"message":…}]} (OCI distribution spec, error codes).
type registryError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string, detail any) {
	writeJSON(w, status, map[string][]registryError{"errors": {{Code: code, Message: msg, Detail: detail}}})
}

// registryTokenResponse is the token endpoint's answer; token and
// access_token carry the same token for the two generations of clients.
type registryTokenResponse struct {
	Token        string `json:"token,omitempty"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// RegistryTokenGrants returns how many tokens /registry/token has issued.
func (s *Server) RegistryTokenGrants() int { return int(s.registryGrants.Load()) }

// serveRegistryToken is /registry/token: GET with service and scope query
// parameters and Basic or no credentials, or the OAuth2-style POST form.
func (s *Server) serveRegistryToken(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		if st := s.cfg.Registry.TokenPOST; st != 0 {
			if st == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", http.MethodGet)
			}
			writeText(w, st, "POST is not served by this token endpoint; use GET")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeText(w, http.StatusMethodNotAllowed, "the token endpoint takes GET or POST")
		return
	}
	if s.applyTokenFailure(w, r) {
		return
	}
	if r.Method == http.MethodPost {
		if e := s.registryTokenPOST(w, r); e != nil {
			s.writeOAuthError(w, e)
		}
		return
	}
	q := r.URL.Query()
	if svc := q.Get("service"); svc != "" && svc != s.cfg.Registry.Service {
		writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", "unknown service "+printable(svc), nil)
		return
	}
	user := ""
	if c, p := readAuthorization(r); p != nil {
		writeRegistryError(w, p.status, "UNSUPPORTED", p.msg, nil)
		return
	} else if c != nil {
		u, p := s.checkBasic(r)
		if p != nil {
			if p.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", basicChallenge(s.Realm("registry")))
				writeRegistryError(w, p.status, "UNAUTHORIZED", p.msg, nil)
			} else {
				writeRegistryError(w, p.status, "UNSUPPORTED", p.msg, nil)
			}
			return
		}
		user = u
	}
	access, err := s.registryAccess(user, q["scope"])
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", err.Error(), nil)
		return
	}
	now := s.clock.Now()
	resp := s.issueRegistryToken(user, q.Get("client_id"), access, now)
	if q.Get("offline_token") == "true" && user != "" {
		resp.RefreshToken = s.issueRegistryRefresh(user, q.Get("client_id"), now)
	}
	resp.Token = resp.AccessToken
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
}

// registryTokenPOST is the OAuth2 flavour of the token endpoint
// (grant_type password or refresh_token).
func (s *Server) registryTokenPOST(w http.ResponseWriter, r *http.Request) *oauthError {
	// The OAuth2 flavour carries the user's credentials in the body; an
	// Authorization field is not read, but must not be malformed.
	if _, p := readAuthorization(r); p != nil {
		return oauthFail(http.StatusBadRequest, "invalid_request", p.msg)
	}
	form, e := parseTokenForm(r)
	if e != nil {
		return e
	}
	if svc := form.Get("service"); svc != "" && svc != s.cfg.Registry.Service {
		return oauthFail(http.StatusBadRequest, "invalid_request", "unknown service "+printable(svc))
	}
	scope := []string{form.Get("scope")}
	if _, err := s.registryAccess("", scope); err != nil {
		return oauthFail(http.StatusBadRequest, "invalid_scope", err.Error())
	}
	now := s.clock.Now()
	client := form.Get("client_id")
	var user, refresh string
	switch gt := form.Get("grant_type"); gt {
	case "password":
		user = form.Get("username")
		if user == "" || !s.checkPassword(user, form.Get("password")) {
			return oauthFail(http.StatusBadRequest, "invalid_grant", "wrong username or password")
		}
		if form.Get("access_type") == "offline" {
			refresh = s.issueRegistryRefresh(user, client, now)
		}
	case "refresh_token":
		old, e := s.redeemRefreshToken(form.Get("refresh_token"), audienceRegistry, client, now, nil)
		if e != nil {
			return e
		}
		user = old.user
		if s.cfg.OAuth2.RotateRefreshTokens {
			refresh = s.issueRegistryRefresh(user, client, now)
		}
	case "":
		return oauthFail(http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		return oauthFail(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+printable(gt)+" is not supported here")
	}
	access, _ := s.registryAccess(user, scope) // its syntax was checked above
	resp := s.issueRegistryToken(user, client, access, now)
	resp.RefreshToken = refresh
	resp.Scope = scopeString(access)
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) issueRegistryToken(user, client string, access map[string][]string, now time.Time) registryTokenResponse {
	tok := s.tokens.issue("mock-reg-", issuedToken{
		kind: accessToken, audience: audienceRegistry, client: client, user: user,
		access: access, authTime: now, issued: now, expires: expiry(now, s.cfg.Registry.TokenLifetime),
	})
	s.registryGrants.Add(1)
	return registryTokenResponse{
		AccessToken: tok,
		ExpiresIn:   lifetimeSeconds(s.cfg.Registry.TokenLifetime),
		IssuedAt:    now.UTC().Format(time.RFC3339),
	}
}

func (s *Server) issueRegistryRefresh(user, client string, now time.Time) string {
	return s.tokens.issue("mock-rrt-", issuedToken{
		kind: refreshToken, audience: audienceRegistry, client: client, user: user,
		authTime: now, issued: now, expires: expiry(now, s.cfg.OAuth2.RefreshTokenLifetime),
	})
}

// registryAccess grants user the part of the requested scopes it may have.
// Each scope parameter holds space-separated scopes of the form
// repository:<name>:<action>[,<action>]; other resource types get nothing.
func (s *Server) registryAccess(user string, scopeParams []string) (map[string][]string, error) {
	access := map[string][]string{}
	for _, param := range scopeParams {
		for _, scope := range strings.Fields(param) {
			typ, rest, ok := strings.Cut(scope, ":")
			i := strings.LastIndex(rest, ":")
			if !ok || i <= 0 || i == len(rest)-1 || typ == "" {
				return nil, fmt.Errorf("scope %s is not type:name:actions", printable(scope))
			}
			if typ != "repository" {
				continue
			}
			name := rest[:i]
			for _, action := range strings.Split(rest[i+1:], ",") {
				if s.registryAllowed(user, name, action) && !slices.Contains(access[name], action) {
					access[name] = append(access[name], action)
				}
			}
		}
	}
	return access, nil
}

// registryAllowed reports whether user ("" for anonymous) may take action
// (pull or push) on repository repo under Config.Registry.Repos.
func (s *Server) registryAllowed(user, repo, action string) bool {
	acc, ok := s.cfg.Registry.Repos[repo]
	if !ok {
		return false
	}
	listed := func(users []string) bool {
		return user != "" && (slices.Contains(users, user) || slices.Contains(users, "*"))
	}
	switch action {
	case "pull":
		return acc.Public || listed(acc.Pull)
	case "push":
		return listed(acc.Push)
	}
	return false
}

func scopeString(access map[string][]string) string {
	names := make([]string, 0, len(access))
	for name := range access {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		names[i] = "repository:" + name + ":" + strings.Join(access[name], ",")
	}
	return strings.Join(names, " ")
}

// serveRegistry is /v2/: the base endpoint takes any registry token, a
// repository takes a token with pull (GET, HEAD) or push (other methods).
func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	name, route := splitRegistryPath(r.URL.Path)
	action, scope := "pull", ""
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		action = "push"
	}
	if name != "" {
		scope = "repository:" + name + ":pull"
		if action == "push" {
			scope += ",push" // as Docker asks: a push needs to read too
		}
	}
	challenge := func(errCode string) {
		c := "Bearer realm=" + quote(registryTokenURL(r)) + ",service=" + quote(s.cfg.Registry.Service)
		if scope != "" {
			c += ",scope=" + quote(scope)
		}
		if errCode != "" {
			c += ",error=" + quote(errCode)
		}
		w.Header().Set("WWW-Authenticate", c)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required",
			[]map[string]string{{"Type": "repository", "Name": name, "Action": action}})
	}
	tok, e := readBearer(r)
	if e != nil {
		if e.status == http.StatusBadRequest {
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", e.desc, nil)
		} else {
			challenge("")
		}
		return
	}
	t, ok := s.tokens.live(tok, accessToken, audienceRegistry, s.clock.Now())
	if !ok {
		challenge("invalid_token")
		return
	}
	if name == "" {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if !slices.Contains(t.access[name], action) {
		if t.user != "" && !s.registryAllowed(t.user, name, action) {
			writeRegistryError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied", nil)
		} else {
			challenge("insufficient_scope")
		}
		return
	}
	s.serveRepository(w, r, name, route)
}

// serveRepository answers the few repository routes a client test needs.
func (s *Server) serveRepository(w http.ResponseWriter, r *http.Request, name, route string) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case route == "tags/list" && get:
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "tags": []string{"latest", "v1"}})
	case strings.HasPrefix(route, "manifests/") && get:
		body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}` + "\n")
		w.Header().Set("Docker-Content-Digest", sha256Digest(body))
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	case strings.HasPrefix(route, "manifests/") && r.Method == http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", "/v2/"+name+"/"+route)
		w.Header().Set("Docker-Content-Digest", sha256Digest(body))
		w.WriteHeader(http.StatusCreated)
	case route == "blobs/uploads/" && r.Method == http.MethodPost:
		id := randomToken(12)
		w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
		w.Header().Set("Docker-Upload-UUID", id)
		w.WriteHeader(http.StatusAccepted)
	default:
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such route in the mock registry", nil)
	}
}

// splitRegistryPath splits /v2/<name>/<route> at the first of the route
// markers; the base /v2/ has no name.
func splitRegistryPath(path string) (name, route string) {
	rest := strings.TrimPrefix(path, "/v2/")
	cut := -1
	for _, marker := range []string{"/tags/", "/manifests/", "/blobs/"} {
		if i := strings.Index(rest, marker); i > 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return strings.TrimSuffix(rest, "/"), ""
	}
	return rest[:cut], rest[cut+1:]
}

// registryTokenURL is the realm of the registry challenge: the token
// endpoint at the origin the client reached.
func registryTokenURL(r *http.Request) string { return origin(r) + "/registry/token" }

// origin is the scheme and authority the client used to reach the server.
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
