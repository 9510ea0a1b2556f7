package mockserver

import (
	"fmt"
	"net/http"
	"strings"
)

// scenarioEntry is one row of [scenarioTable]: a handler and the scenarios
// it serves.
type scenarioEntry struct {
	// serve answers the requests of every path that list returns; nil for
	// the forward proxy, which [Server.ServeHTTP] picks by request form.
	serve func(s *Server, w http.ResponseWriter, r *http.Request)
	// list returns the scenarios, as [Server.Scenarios] and GET / show
	// them. A Path "/a/ and /a/b/" names two paths; a path ending in "/"
	// serves everything below it too, as in [http.ServeMux].
	list func(s *Server) []Scenario
}

// scenarioTable is the single source of the server's scenarios: [routes]
// mounts each entry's handler on the paths it lists, [Server.Scenarios]
// and GET / list them in this order, and each path is served with and
// without its trailing slash. A new scenario is a new entry (and its
// handler); nothing else lists paths.
func scenarioTable() []scenarioEntry {
	return []scenarioEntry{
		{(*Server).serveBasic, func(s *Server) []Scenario {
			return []Scenario{{"basic", "/basic/", "basic", basicChallenge(s.Realm("basic")),
				"any user of Config.Users: 200; none, another scheme or a wrong password: 401 with the challenge; malformed credentials (bad base64, no ':'): 400"}}
		}},
		{(*Server).serveBearer, func(s *Server) []Scenario {
			bearer := "Bearer realm=" + quote(s.Realm("bearer"))
			return []Scenario{
				{"bearer", "/bearer/", "bearer", bearer,
					"static tokens of Config.Bearer.Tokens: 200; unknown token: 401 error=invalid_token; no token or another scheme: 401 with the bare challenge (RFC 6750 §3.1); malformed: 400 error=invalid_request"},
				{"bearer", "/bearer/admin", "bearer", bearer,
					`needs scope admin: a token without it gets 403 error="insufficient_scope", scope="admin"`},
			}
		}},
		{(*Server).serveDigest, func(s *Server) []Scenario {
			var sc []Scenario
			for _, v := range digestVariants {
				auth := fmt.Sprintf("Digest realm=%s, algorithm=%s, qop=%s", quote(s.Realm(v.realmKey())),
					strings.Join(v.offered(s.cfg), " | "), quote(strings.Join(v.qop, ", ")))
				sc = append(sc, Scenario{"digest", v.path(), v.realmKey(), auth, v.about +
					"; nonces stale after Config.Digest.NonceLifetime / NonceMaxUses; a repeated nc is refused; Authentication-Info with rspauth; " + v.curlNote(s.cfg)})
			}
			return sc
		}},
		{(*Server).serveOAuth2Token, func(s *Server) []Scenario {
			return []Scenario{{"oauth2", "/oauth2/token", "oauth2/token", "client: Basic, or client_id and client_secret in the body (RFC 6749 §2.3.1)",
				"POST form; grant_type client_credentials, password or refresh_token (rotating); acr_values=<acr> gives the token that acr; errors of RFC 6749 §5.2 as JSON"}}
		}},
		{(*Server).serveOAuth2Revoke, func(s *Server) []Scenario {
			return []Scenario{{"oauth2", "/oauth2/revoke", "oauth2/token", "client as for /oauth2/token", "POST token=<token>: revokes the client's access or refresh token (RFC 7009)"}}
		}},
		{(*Server).serveOAuth2Resource, func(s *Server) []Scenario {
			bearer := "Bearer realm=" + quote(s.Realm("oauth2"))
			return []Scenario{
				{"oauth2", "/oauth2/resource", "oauth2", bearer,
					`live access tokens of /oauth2/token: 200; expired, revoked or unknown: 401 error="invalid_token"`},
				{"oauth2", "/oauth2/resource/admin", "oauth2", bearer,
					`as /oauth2/resource, and needs scope admin: a token without it gets 403 error="insufficient_scope", scope="admin"`},
			}
		}},
		{(*Server).serveRegistry, func(s *Server) []Scenario {
			return []Scenario{{"registry", "/v2/", "", `Bearer realm="<origin>/registry/token",service=` + quote(s.cfg.Registry.Service) + `,scope="repository:<name>:pull"`,
				"registry API: /v2/<name>/tags/list and GET manifests need pull; PUT manifests and POST blobs/uploads/ need push; a token without the scope: 401 error=\"insufficient_scope\", or 403 DENIED when the user may not have it"}}
		}},
		{(*Server).serveRegistryToken, func(s *Server) []Scenario {
			return []Scenario{{"registry", "/registry/token", "registry", "Basic (optional: no credentials is anonymous)",
				"GET ?service=&scope=repository:<name>:pull,push (offline_token=true adds a refresh_token); POST form grant_type=password or refresh_token; grants the part of the scope Config.Registry.Repos allows"}}
		}},
		{(*Server).serveForbidden, func(s *Server) []Scenario {
			return []Scenario{{"forbidden", "/forbidden/", "forbidden", basicChallenge(s.Realm("forbidden")) + " (Bearer tokens accepted too)",
				"admins (Config.Admins, or a token with scope admin): 200; other authenticated clients: 403"}}
		}},
		{(*Server).serveHidden, func(s *Server) []Scenario {
			return []Scenario{{"hidden", "/hidden/", "hidden", basicChallenge(s.Realm("hidden")) + " (Bearer tokens accepted too)",
				"as /forbidden/, but 404 instead of 403, hiding the resource (RFC 9110 §15.5.5)"}}
		}},
		{(*Server).serveApache, func(s *Server) []Scenario {
			return []Scenario{{"apache", "/apache/", "apache", basicChallenge(s.Realm("apache")),
				"admins: 200; other valid users: 401 with a fresh challenge, as Apache httpd's Require user"}}
		}},
		{(*Server).serveNoChallenge, func(s *Server) []Scenario {
			return []Scenario{{"no-challenge", "/no-challenge/", "", "Basic or Bearer, never challenged",
				"valid credentials: 200; anything else: 401 without WWW-Authenticate, body {\"message\":\"Bad credentials\"}"}}
		}},
		{(*Server).serveMalformed, func(s *Server) []Scenario {
			var sc []Scenario
			for i, m := range malformedChallenges {
				path := "/malformed/" + m.kind + "/"
				if i == 0 {
					path = "/malformed/ and " + path
				}
				sc = append(sc, Scenario{"malformed", path, "", "malformed WWW-Authenticate", "401 with " + m.about + "; valid Basic credentials still get 200"})
			}
			return sc
		}},
		{(*Server).serveStepUp, func(s *Server) []Scenario {
			stepup := "Bearer realm=" + quote(s.Realm("stepup"))
			return []Scenario{
				{"stepup", "/stepup/", "stepup", stepup,
					`tokens of /oauth2/token with acr ` + quote(s.cfg.StepUp.ACR) + `: 200; others: 401 error="insufficient_user_authentication", acr_values (RFC 9470)`},
				{"stepup", "/stepup/max-age/", "stepup", stepup,
					fmt.Sprintf(`tokens whose authentication is at most %v old: 200; older: 401 error="insufficient_user_authentication", max_age`, s.cfg.StepUp.MaxAge)},
			}
		}},
		{(*Server).serveDPoPToken, (*Server).dpopTokenScenarios},
		{(*Server).serveDPoPResource, (*Server).dpopResourceScenarios},
		{(*Server).serveStatus, func(s *Server) []Scenario {
			return []Scenario{
				{"status", "/status/429/", "", "none",
					fmt.Sprintf("%d requests in a row get 429 with Retry-After (%v), then one 200; FailFirst < 0: always 429", s.cfg.Status.FailFirst, s.cfg.Status.RetryAfter)},
				{"status", "/status/503/", "", "none", "as /status/429/ with 503"},
			}
		}},
		{nil, (*Server).proxyScenarios},
	}
}

// proxyScenarios lists the forward proxy when Config.Proxy enables it.
func (s *Server) proxyScenarios() []Scenario {
	if !s.cfg.Proxy.Enabled {
		return nil
	}
	var asks []string
	for _, scheme := range s.cfg.Proxy.Schemes {
		switch scheme {
		case "Basic":
			asks = append(asks, "Proxy-Authenticate: "+basicChallenge(s.Realm(proxyRealmKey)))
		case "Digest":
			asks = append(asks, fmt.Sprintf("Proxy-Authenticate: Digest realm=%s, algorithm=%s, qop=\"auth\"",
				quote(s.Realm(proxyRealmKey)), strings.Join(s.cfg.Digest.Algorithms, " | ")))
		}
	}
	return []Scenario{{"proxy", "forward proxy: GET http://<loopback>/… and CONNECT <loopback>:<port> to this server", proxyRealmKey,
		strings.Join(asks, "; "),
		"users of Config.Users: forwarded (Proxy-Authorization removed) or tunnelled; none or wrong: 407; a target that is not loopback: 403, never dialled; " +
			"Digest uri as the absolute URL or its path (curl sends the path, squid accepts both); " + strings.Replace(curlFor(s.cfg.Digest.Algorithms), "--digest", "--proxy-digest", 1)}}
}

// Scenarios lists every scenario the server serves, in the order of the
// GET / listing.
func (s *Server) Scenarios() []Scenario {
	var sc []Scenario
	for _, e := range scenarioTable() {
		sc = append(sc, e.list(s)...)
	}
	return sc
}

// scenarioPaths splits a [Scenario.Path] into the paths it names; the
// forward proxy, which has no path, names none.
func scenarioPaths(sc Scenario) []string {
	if !strings.HasPrefix(sc.Path, "/") {
		return nil
	}
	return strings.Split(sc.Path, " and ")
}

// routes returns the handler of every scenario of [scenarioTable]. Each
// scenario path is served with and without its trailing slash: /bearer is
// /bearer/ and /oauth2/token/ is /oauth2/token, answered in place rather
// than with a redirect, which a client would have to follow (and
// re-authenticate).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/{$}", scenarioOf("listing", s.serveListing))
	aliases := map[string]string{} // the other spelling → the listed path
	mounted := map[string]bool{}
	for _, e := range scenarioTable() {
		for _, sc := range e.list(s) {
			for _, p := range scenarioPaths(sc) {
				if e.serve == nil || mounted[p] {
					continue
				}
				mounted[p] = true
				serve := e.serve
				mux.Handle(p, scenarioOf(sc.Name, func(w http.ResponseWriter, r *http.Request) { serve(s, w, r) }))
				if alt, ok := strings.CutSuffix(p, "/"); ok {
					aliases[alt] = p
				} else {
					aliases[p+"/"] = p
				}
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
