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

// listing is the content of GET /.
type listing struct {
	URL          string                `json:"url"`
	Users        []listedUser          `json:"users"`
	Clients      map[string]string     `json:"oauth2_clients"`
	KeyClients   []string              `json:"private_key_jwt_clients,omitempty"`
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
		URL: base, Clients: s.cfg.OAuth2.Clients, Scopes: s.cfg.OAuth2.Scopes, BearerTokens: s.cfg.Bearer.Tokens,
		Service: s.cfg.Registry.Service, Repos: s.cfg.Registry.Repos, Scenarios: s.Scenarios(),
	}
	l.KeyClients = sortedKeys(s.cfg.OAuth2.ClientKeys)
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
	if len(l.KeyClients) > 0 {
		fmt.Fprintf(&b, "OAuth2 clients with a key (private_key_jwt): %s\n", strings.Join(l.KeyClients, " "))
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
