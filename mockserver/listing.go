package mockserver

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// Scenario is one behaviour of the server, served on its own path.
type Scenario struct {
	Name        string // as in [Request.Scenario]: "basic", "digest", "oauth2", …; GET / is "listing"
	Path        string // where it is served, e.g. "/digest/sha-256/"
	RealmKey    string // its key in Config.Realms; "" when it has no realm of its own
	Auth        string // what it asks for: the challenge, or a short description
	Description string // what it does
}

// routes returns the handler of every scenario. Each scenario path is
// served with and without its trailing slash: /bearer is /bearer/ and
// /oauth2/token/ is /oauth2/token, answered in place rather than with a
// redirect, which a client would have to follow (and re-authenticate).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, name string, h http.HandlerFunc) { mux.Handle(pattern, scenarioOf(name, h)) }
	handle("/{$}", "listing", s.serveListing)
	handle("/basic/", "basic", s.serveBasic)
	handle("/bearer/", "bearer", s.serveBearer)
	handle("/digest/", "digest", s.serveDigest)
	handle("/oauth2/token", "oauth2", s.serveOAuth2Token)
	handle("/oauth2/revoke", "oauth2", s.serveOAuth2Revoke)
	handle("/oauth2/resource", "oauth2", s.serveOAuth2Resource)
	handle("/oauth2/resource/", "oauth2", s.serveOAuth2Resource)
	handle("/registry/token", "registry", s.serveRegistryToken)
	handle("/v2/", "registry", s.serveRegistry)
	handle("/forbidden/", "forbidden", s.serveForbidden)
	handle("/hidden/", "hidden", s.serveHidden)
	handle("/apache/", "apache", s.serveApache)
	handle("/no-challenge/", "no-challenge", s.serveNoChallenge)
	handle("/malformed/", "malformed", s.serveMalformed)
	handle("/stepup/", "stepup", s.serveStepUp)
	handle("/status/429/", "status", s.serveStatus)
	handle("/status/503/", "status", s.serveStatus)

	aliases := map[string]string{} // the other spelling → the listed path
	for _, sc := range s.Scenarios() {
		if !strings.HasPrefix(sc.Path, "/") {
			continue // the forward proxy
		}
		for _, p := range strings.Split(sc.Path, " and ") {
			if alt, ok := strings.CutSuffix(p, "/"); ok {
				aliases[alt] = p
			} else {
				aliases[p+"/"] = p
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := aliases[r.URL.Path]; ok {
			// The handlers see the listed path; r.RequestURI, which
			// Digest's uri is checked against, stays as sent.
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r = r.WithContext(r.Context())
			r.URL = &u
		}
		mux.ServeHTTP(w, r)
	})
}

// Scenarios lists every scenario the server serves, in the order of the
// GET / listing.
func (s *Server) Scenarios() []Scenario {
	bearer := "Bearer realm=" + quote(s.Realm("bearer"))
	sc := []Scenario{
		{"basic", "/basic/", "basic", basicChallenge(s.Realm("basic")),
			"any user of Config.Users: 200; none, another scheme or a wrong password: 401 with the challenge; malformed credentials (bad base64, no ':'): 400"},
		{"bearer", "/bearer/", "bearer", bearer,
			"static tokens of Config.BearerTokens: 200; unknown token: 401 error=invalid_token; no token or another scheme: 401 with the bare challenge (RFC 6750 §3.1); malformed: 400 error=invalid_request"},
		{"bearer", "/bearer/admin", "bearer", bearer,
			`needs scope admin: a token without it gets 403 error="insufficient_scope", scope="admin"`},
	}
	for _, v := range digestVariants {
		auth := fmt.Sprintf("Digest realm=%s, algorithm=%s, qop=%s", quote(s.Realm(v.realmKey())),
			strings.Join(v.offered(s.cfg), " | "), quote(strings.Join(v.qop, ", ")))
		sc = append(sc, Scenario{"digest", v.path(), v.realmKey(), auth, v.about +
			"; nonces stale after Config.NonceLifetime / NonceMaxUses; a repeated nc is refused; Authentication-Info with rspauth; " + v.curlNote(s.cfg)})
	}
	sc = append(sc,
		Scenario{"oauth2", "/oauth2/token", "oauth2/token", "client: Basic, or client_id and client_secret in the body (RFC 6749 §2.3.1)",
			"POST form; grant_type client_credentials, password or refresh_token (rotating); acr_values=<acr> gives the token that acr; errors of RFC 6749 §5.2 as JSON"},
		Scenario{"oauth2", "/oauth2/revoke", "oauth2/token", "client as for /oauth2/token", "POST token=<token>: revokes the client's access or refresh token (RFC 7009)"},
		Scenario{"oauth2", "/oauth2/resource", "oauth2", "Bearer realm=" + quote(s.Realm("oauth2")),
			`live access tokens of /oauth2/token: 200; expired, revoked or unknown: 401 error="invalid_token"`},
		Scenario{"oauth2", "/oauth2/resource/admin", "oauth2", "Bearer realm=" + quote(s.Realm("oauth2")),
			`as /oauth2/resource, and needs scope admin: a token without it gets 403 error="insufficient_scope", scope="admin"`},
		Scenario{"registry", "/v2/", "", `Bearer realm="<origin>/registry/token",service=` + quote(s.cfg.RegistryService) + `,scope="repository:<name>:pull"`,
			"registry API: /v2/<name>/tags/list and GET manifests need pull; PUT manifests and POST blobs/uploads/ need push; a token without the scope: 401 error=\"insufficient_scope\", or 403 DENIED when the user may not have it"},
		Scenario{"registry", "/registry/token", "registry", "Basic (optional: no credentials is anonymous)",
			"GET ?service=&scope=repository:<name>:pull,push (offline_token=true adds a refresh_token); POST form grant_type=password or refresh_token; grants the part of the scope Config.RegistryRepos allows"},
		Scenario{"forbidden", "/forbidden/", "forbidden", basicChallenge(s.Realm("forbidden")) + " (Bearer tokens accepted too)",
			"admins (Config.Admins, or a token with scope admin): 200; other authenticated clients: 403"},
		Scenario{"hidden", "/hidden/", "hidden", basicChallenge(s.Realm("hidden")) + " (Bearer tokens accepted too)",
			"as /forbidden/, but 404 instead of 403, hiding the resource (RFC 9110 §15.5.5)"},
		Scenario{"apache", "/apache/", "apache", basicChallenge(s.Realm("apache")),
			"admins: 200; other valid users: 401 with a fresh challenge, as Apache httpd's Require user"},
		Scenario{"no-challenge", "/no-challenge/", "", "Basic or Bearer, never challenged",
			"valid credentials: 200; anything else: 401 without WWW-Authenticate, body {\"message\":\"Bad credentials\"}"},
	)
	for i, m := range malformedChallenges {
		path := "/malformed/" + m.kind + "/"
		if i == 0 {
			path = "/malformed/ and " + path
		}
		sc = append(sc, Scenario{"malformed", path, "", "malformed WWW-Authenticate", "401 with " + m.about + "; valid Basic credentials still get 200"})
	}
	stepup := "Bearer realm=" + quote(s.Realm("stepup"))
	sc = append(sc,
		Scenario{"stepup", "/stepup/", "stepup", stepup,
			`tokens of /oauth2/token with acr ` + quote(s.cfg.StepUpACR) + `: 200; others: 401 error="insufficient_user_authentication", acr_values (RFC 9470)`},
		Scenario{"stepup", "/stepup/max-age/", "stepup", stepup,
			fmt.Sprintf(`tokens whose authentication is at most %v old: 200; older: 401 error="insufficient_user_authentication", max_age`, s.cfg.StepUpMaxAge)},
		Scenario{"status", "/status/429/", "", "none",
			fmt.Sprintf("%d requests in a row get 429 with Retry-After (%v), then one 200; FailFirst < 0: always 429", s.cfg.FailFirst, s.cfg.RetryAfter)},
		Scenario{"status", "/status/503/", "", "none", "as /status/429/ with 503"},
	)
	if s.cfg.Proxy.Enabled {
		var asks []string
		for _, scheme := range s.cfg.Proxy.Schemes {
			switch scheme {
			case "Basic":
				asks = append(asks, "Proxy-Authenticate: "+basicChallenge(s.Realm(proxyRealmKey)))
			case "Digest":
				asks = append(asks, fmt.Sprintf("Proxy-Authenticate: Digest realm=%s, algorithm=%s, qop=\"auth\"",
					quote(s.Realm(proxyRealmKey)), strings.Join(s.cfg.DigestAlgorithms, " | ")))
			}
		}
		sc = append(sc, Scenario{"proxy", "forward proxy: GET http://<loopback>/… and CONNECT <loopback>:<port> to this server", proxyRealmKey,
			strings.Join(asks, "; "),
			"users of Config.Users: forwarded (Proxy-Authorization removed) or tunnelled; none or wrong: 407; a target that is not loopback: 403, never dialled; " +
				"Digest uri as the absolute URL or its path (curl sends the path, squid accepts both); " + strings.Replace(curlFor(s.cfg.DigestAlgorithms), "--digest", "--proxy-digest", 1)})
	}
	return sc
}

// listing is the content of GET /.
type listing struct {
	URL          string                `json:"url"`
	Users        []listedUser          `json:"users"`
	Clients      map[string]string     `json:"oauth2_clients"`
	Scopes       []string              `json:"oauth2_scopes"`
	BearerTokens map[string][]string   `json:"bearer_tokens"`
	Service      string                `json:"registry_service"`
	Repos        map[string]RepoAccess `json:"registry_repos"`
	Scenarios    []Scenario            `json:"scenarios"`
}

type listedUser struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

func (s *Server) listing(base string) listing {
	l := listing{
		URL: base, Clients: s.cfg.Clients, Scopes: s.cfg.Scopes, BearerTokens: s.cfg.BearerTokens,
		Service: s.cfg.RegistryService, Repos: s.cfg.RegistryRepos, Scenarios: s.Scenarios(),
	}
	for name, pw := range s.cfg.Users {
		l.Users = append(l.Users, listedUser{name, pw, s.isAdmin(name)})
	}
	slices.SortFunc(l.Users, func(a, b listedUser) int { return strings.Compare(a.Name, b.Name) })
	return l
}

// Listing returns the plain-text listing of GET /: the test users, clients,
// tokens and every scenario. These are a mock's published test credentials,
// not secrets.
func (s *Server) Listing() string { return s.listingText(s.url) }

func (s *Server) listingText(base string) string {
	l := s.listing(base)
	var b strings.Builder
	fmt.Fprintf(&b, "reauth mock server %s\n\n", l.URL)
	b.WriteString("Users (Basic, Digest, OAuth2 password grant, registry token):\n")
	for _, u := range l.Users {
		admin := ""
		if u.Admin {
			admin = "  (admin)"
		}
		fmt.Fprintf(&b, "  %q / %q%s\n", u.Name, u.Password, admin)
	}
	b.WriteString("OAuth2 clients (client_id / client_secret):\n")
	for _, id := range sortedKeys(l.Clients) {
		fmt.Fprintf(&b, "  %q / %q\n", id, l.Clients[id])
	}
	fmt.Fprintf(&b, "OAuth2 scopes: %s\n", strings.Join(l.Scopes, " "))
	b.WriteString("Bearer tokens of /bearer/ (token: scopes):\n")
	for _, tok := range sortedKeys(l.BearerTokens) {
		fmt.Fprintf(&b, "  %s: %s\n", tok, strings.Join(l.BearerTokens[tok], " "))
	}
	fmt.Fprintf(&b, "Registry service %q, repositories:\n", l.Service)
	for _, name := range sortedKeys(l.Repos) {
		r := l.Repos[name]
		fmt.Fprintf(&b, "  %s: public pull %v; pull: %s; push: %s\n", name, r.Public, strings.Join(r.Pull, " "), strings.Join(r.Push, " "))
	}
	b.WriteString("\nScenarios (each path works with or without its trailing slash):\n")
	for _, sc := range l.Scenarios {
		fmt.Fprintf(&b, "  %s\n      asks: %s\n      does: %s\n", sc.Path, sc.Auth, sc.Description)
	}
	return b.String()
}

// serveListing is GET /: the listing as text, or as JSON when the Accept
// field asks for application/json.
func (s *Server) serveListing(w http.ResponseWriter, r *http.Request) {
	base := origin(r)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, s.listing(base))
		return
	}
	writeText(w, http.StatusOK, strings.TrimSuffix(s.listingText(base), "\n"))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
