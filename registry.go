package reauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Registry returns credentials for the token flow of Docker Registry v2 and
// OCI distribution registries. A 401 with
//
//	Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull"
//
// is answered with a token from the realm, fetched with these credentials
// (Basic to the realm; none when both are ""), cached per scope until it
// expires, and sent with the retry. Once a token is held for a repository,
// requests to it carry the token from the start (GET and HEAD need pull,
// other methods pull and push). A registry that challenges for Basic itself
// gets Basic.
//
// Registry("", "") pulls anonymously. See [RegistryWithOptions] for the OAuth2
// form, refresh (identity) tokens and the realm policy.
func Registry(username, password string) Credentials {
	return RegistryWithOptions(username, password, RegistryOptions{})
}

// RegistryOptions tune [RegistryWithOptions]. The zero value is what
// [Registry] uses.
type RegistryOptions struct {
	// AllowPrivateRealms lets the realm be a host other than the registry's
	// that resolves to a loopback, private, link-local or otherwise
	// non-public address. By default such a realm is refused before anything
	// is dialled: a registry must not be able to aim the client's requests
	// (and password) at the internal network. A realm on the registry's own
	// host, and a loopback realm of a loopback registry, are always allowed.
	//
	// Without AllowPrivateRealms, a realm request to a host name other than
	// the registry's (and other than localhost) is sent by a clone of
	// RealmTransport whose dialer connects only to the addresses that
	// LookupNetIP returned and the policy checked, so that a second DNS
	// answer (DNS rebinding) cannot move it; its DialTLSContext is not used.
	// Realm requests to the registry's own host, to an IP address or to
	// localhost go through Transport.Base. Through a forward or SOCKS proxy
	// (RealmTransport's Proxy), the proxy resolves the realm's host itself:
	// only the client's own resolution is checked then. With
	// AllowPrivateRealms, realm requests all go through Transport.Base.
	AllowPrivateRealms bool
	// RealmTransport is the transport that the realm requests to other hosts
	// are sent with (see AllowPrivateRealms); reauth uses a clone and leaves
	// it unchanged. Nil means Transport.Base when that is an *http.Transport
	// (http.DefaultTransport when Base is nil). A Base of another kind (a
	// wrapper, a test double) cannot be made to dial only the checked
	// addresses: with it, such a realm is refused with a [*TokenError] wrapping [ErrRealmNotAllowed] until
	// RealmTransport (or AllowPrivateRealms) is set.
	RealmTransport *http.Transport
	// InsecureAllowHTTP lets the password go to a plain-http realm on a host
	// that is not loopback (a plain-http registry's realm); set
	// Transport.InsecureAllowHTTP as well for the token to be sent on.
	InsecureAllowHTTP bool
	// PasswordGrant fetches tokens with the OAuth2 form (POST, grant_type=
	// password, as in the distribution spec's oauth.md) instead of GET with
	// Basic. A realm that answers the POST with 404 or 405 is asked with GET
	// from then on. A refresh token from the realm is kept and used instead
	// of the password.
	PasswordGrant bool
	// RefreshToken is a refresh token to fetch tokens with (grant_type=
	// refresh_token), such as the identitytoken a Docker credential helper
	// stores. If the realm refuses it and a password is set, the password is
	// used instead.
	RefreshToken string
	// ClientID is sent as client_id in the OAuth2 form. Empty means "reauth".
	ClientID string
	// LookupNetIP resolves a realm's host name: the addresses it returns are
	// checked against the realm policy, and they are the only ones the
	// realm's requests dial (one lookup serves both). It is not asked for the
	// registry's own host, IP addresses, localhost, or with
	// AllowPrivateRealms. Nil means net.DefaultResolver.LookupNetIP(ctx,
	// "ip", host).
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// Now is the clock that token expiry is measured with. Nil means time.Now.
	Now func() time.Time
	// FetchTimeout bounds each token fetch from a realm. Once started, a
	// fetch runs on its own context, which keeps the values of the request
	// that started it and ends after FetchTimeout: the requests waiting for
	// it return on their own contexts, and a token (and a rotated refresh
	// token) that arrives after they gave up is still kept. Zero or
	// negative means [DefaultRegistryFetchTimeout].
	FetchTimeout time.Duration
	// RealmOrigins lists origins ("scheme://host[:port]"), besides the
	// registry's own and Transport.Origins, whose token realm may receive
	// the password: Docker Hub's registry (registry-1.docker.io) names its
	// realm on https://auth.docker.io. The realm policy (https, public
	// addresses, the checked addresses only) still applies to them. A
	// malformed entry fails the first challenge with an error matching
	// ErrConfig.
	RealmOrigins []string
}

// RegistryWithOptions is [Registry] with options.
func RegistryWithOptions(username, password string, opts RegistryOptions) Credentials {
	c := &registryCredentials{username: username, password: password, opts: opts}
	c.realmOrigins, c.optsErr = parseOrigins("RegistryOptions.RealmOrigins", opts.RealmOrigins)
	if username != "" || password != "" {
		c.basic = Basic(username, password).(*basicCredentials)
	}
	if c.opts.ClientID == "" {
		c.opts.ClientID = "reauth"
	}
	if c.opts.Now == nil {
		c.opts.Now = time.Now
	}
	if c.opts.FetchTimeout <= 0 {
		c.opts.FetchTimeout = DefaultRegistryFetchTimeout
	}
	return c
}

// Bounds on what a registry can make the credentials hold.
const (
	maxHeldTokens = 1024 // (origin, repository) entries
	maxRealms     = 64   // realms with per-realm state
	// maxScopes bounds the resources one challenge may ask for, and so
	// what one challenge makes the credentials request and hold. A registry
	// asks for one, or two for a cross-repository blob mount.
	maxScopes = 64
	// maxActions bounds the distinct actions asked for one resource
	// (pull, push, delete, *, …), which keeps merging them linear.
	maxActions = 16
	// tokenExpiryLeeway: a token this close to its expiry is not sent up
	// front any more; a fresh one costs less than a refusal.
	tokenExpiryLeeway = 5 * time.Second
)

// DefaultRegistryFetchTimeout is RegistryOptions.FetchTimeout when it is
// zero: how long one token fetch from a realm (its policy check, lookup,
// requests and redirects) may take.
const DefaultRegistryFetchTimeout = 30 * time.Second

type registryCredentials struct {
	username, password string
	basic              *basicCredentials // nil when anonymous
	opts               RegistryOptions
	realmOrigins       *originSet // opts.RealmOrigins, parsed
	optsErr            error      // a malformed RealmOrigins entry
	// fetches makes concurrent requests for the same token share one fetch
	// (DESIGN.md, invariant 6).
	fetches singleflight.Group

	mu     sync.Mutex
	held   map[heldKey]*heldToken
	realms map[string]*realmState // by realm URL
	// heldRefresh lists the refresh tokens handed out by realms, newest
	// last, so that errors can be scrubbed of them.
	heldRefresh []string
}

// heldKey names a resource ("repository:team/app") of a registry origin.
// The resource "" holds the token of a challenge without a scope.
type heldKey struct {
	origin   origin
	resource string
}

// heldToken is a token and what it was issued for, kept for one resource.
type heldToken struct {
	value          string   // "Bearer <token>"
	actions        []string // the actions asked for this resource, sorted
	realm, service string
	expiry         time.Time
}

func (h *heldToken) fresh(now time.Time) bool {
	return now.Before(h.expiry.Add(-tokenExpiryLeeway))
}

// realmState is what a realm taught the credentials.
type realmState struct {
	refresh map[string]string // refresh token by service; "" once refused
	noPOST  bool              // answered the OAuth2 POST with 404 or 405
}

// scope is one scope of the token protocol, "type:name:actions". A scope
// that does not parse as one is kept whole in resource, with no actions.
type scope struct {
	resource string   // "repository:team/app"
	actions  []string // sorted, without duplicates
}

func (s scope) String() string {
	if s.actions == nil {
		return s.resource
	}
	return s.resource + ":" + strings.Join(s.actions, ",")
}

// parseScopes parses a challenge's scope auth-param: scopes separated by
// spaces, each "type:name:actions". The name may itself hold ':' (a
// registry host with a port), so the actions are what follows the last ':'.
// The result is sorted by resource with one entry per resource; a challenge
// without a scope gives the one scope "". More than maxScopes resources, or
// maxActions actions on one, is an error, found before the rest is read:
// time and memory are linear in the length of param.
func parseScopes(param string) ([]scope, error) {
	var out []scope
	index := make(map[string]int) // resource → its entry in out
	for f := range strings.FieldsSeq(param) {
		resource, actions, hasActions := f, "", false
		if i, j := strings.IndexByte(f, ':'), strings.LastIndexByte(f, ':'); i > 0 && j > i+1 {
			resource, actions, hasActions = f[:j], f[j+1:], true
		}
		k, ok := index[resource]
		if !ok {
			if len(out) == maxScopes {
				return nil, Final(fmt.Errorf("reauth: the registry's challenge asks for more than %d resources in its scope; reauth refuses it rather than request and hold a token for each", maxScopes))
			}
			k = len(out)
			index[resource] = k
			out = append(out, scope{resource: resource})
		}
		if !hasActions {
			continue
		}
		s := &out[k]
		if s.actions == nil {
			s.actions = []string{}
		}
		for a := range strings.SplitSeq(actions, ",") {
			if a == "" || slices.Contains(s.actions, a) { // at most maxActions
				continue
			}
			if len(s.actions) == maxActions {
				return nil, Final(fmt.Errorf("reauth: the registry's challenge asks for more than %d actions on %q; reauth refuses it", maxActions, cleanField(resource, nil)))
			}
			s.actions = append(s.actions, a)
		}
	}
	if len(out) == 0 {
		return []scope{{}}, nil
	}
	for i := range out {
		slices.Sort(out[i].actions)
	}
	slices.SortFunc(out, func(a, b scope) int { return strings.Compare(a.resource, b.resource) })
	return out, nil
}

func normalActions(a []string) []string {
	a = slices.DeleteFunc(a, func(s string) bool { return s == "" })
	slices.Sort(a)
	return slices.Compact(a)
}

func unionActions(a, b []string) []string {
	if b == nil {
		return a
	}
	return normalActions(append(slices.Clone(a), b...))
}

// covers reports whether held grants every action in want ("*" grants all).
// Both are sorted without duplicates (normalActions): one pass over each.
func covers(held, want []string) bool {
	if slices.Contains(held, "*") {
		return true
	}
	i := 0
	for _, w := range want {
		for i < len(held) && held[i] < w {
			i++
		}
		if i == len(held) || held[i] != w {
			return false
		}
	}
	return true
}

// requestScope derives the scope a registry API request needs from its path
// (/v2/<name>/manifests/<ref>, /blobs/<digest>, /blobs/uploads/…,
// /tags/list, /referrers/<digest>): pull for GET and HEAD, pull and push for
// anything else. ok is false when the path is not one of those or could be
// read more than one way: then nothing is sent up front.
func requestScope(r *http.Request) (resource string, actions []string, ok bool) {
	rest, found := strings.CutPrefix(r.URL.Path, "/v2/")
	if !found {
		return "", nil, false
	}
	segs := strings.Split(rest, "/")
	at := -1
	for i := 1; i < len(segs); i++ {
		if isEndpointTail(segs[i:]) {
			if at >= 0 {
				return "", nil, false // the name could end at either
			}
			at = i
		}
	}
	if at < 0 {
		return "", nil, false
	}
	name := strings.Join(segs[:at], "/")
	if !isRepositoryName(name) {
		return "", nil, false
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "repository:" + name, []string{"pull"}, true
	}
	return "repository:" + name, []string{"pull", "push"}, true
}

// isEndpointTail reports whether t, the path segments after a repository
// name, is one of the distribution API's per-repository endpoints.
func isEndpointTail(t []string) bool {
	switch {
	case len(t) == 2 && (t[0] == "manifests" || t[0] == "blobs" || t[0] == "referrers"):
		return t[1] != ""
	case len(t) == 2 && t[0] == "tags":
		return t[1] == "list"
	case len(t) == 3 && t[0] == "blobs" && t[1] == "uploads":
		return true // "" for /blobs/uploads/, or the session id
	}
	return false
}

// isRepositoryName reports whether name is a repository name of the
// distribution spec: path components of lower-case letters and digits
// joined by '.', '_', '__' or runs of '-'.
func isRepositoryName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if comp == "" || !isAlnumLower(comp[0]) || !isAlnumLower(comp[len(comp)-1]) {
			return false
		}
		for i := 0; i < len(comp); i++ {
			if c := comp[i]; !isAlnumLower(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnumLower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Authorize sends the token Refused fetched for this request, a token
// already held for the request's repository with enough actions, or Basic
// to a registry that challenged for it.
func (c *registryCredentials) Authorize(r *AuthRequest) error {
	if r.Proxy() != nil {
		return nil
	}
	if v, _ := r.State.(string); v != "" {
		r.Set(r.Field(), v)
		return nil
	}
	if resource, actions, ok := requestScope(r.Request()); ok {
		c.mu.Lock()
		h := c.held[heldKey{r.Origin(), resource}]
		v := ""
		if h != nil && h.fresh(c.opts.Now()) && covers(h.actions, actions) {
			v = h.value
		}
		c.mu.Unlock()
		if v != "" {
			r.Set(r.Field(), v)
			return nil
		}
	}
	if c.basic != nil {
		return c.basic.Authorize(r)
	}
	return nil
}

// Observe does nothing: registry tokens learn nothing from responses.
func (c *registryCredentials) Observe(*AuthRequest, *http.Response) error { return nil }

// Refused answers a Bearer challenge with a realm with a token for its scope
// merged with the actions already held for the same repositories, so that a
// push after a pull asks for pull and push. A token held for that scope and
// not the one refused is sent without a fetch.
func (c *registryCredentials) Refused(r *AuthRequest, refusal *Refusal) (Retry, error) {
	if r.Proxy() != nil || refusal.StatusCode != http.StatusUnauthorized {
		return 0, nil
	}
	if refusal.Allowed&RetryChallenge == 0 {
		return RetryChallenge, nil // the ceiling refuses it; fetch nothing
	}
	var ch *Challenge
	for i := range refusal.Challenges {
		if refusal.Challenges[i].Is("Bearer") && refusal.Challenges[i].Params["realm"] != "" {
			ch = &refusal.Challenges[i]
			break
		}
	}
	if ch == nil {
		if c.basic != nil && hasScheme(refusal.Challenges, "Basic") {
			return c.basic.Refused(r, refusal)
		}
		return 0, nil
	}
	if c.optsErr != nil {
		return 0, c.optsErr
	}
	tr := &tokenRequest{
		registry: *r.Request().URL,
		origin:   r.Origin(),
		realm:    ch.Params["realm"],
		service:  ch.Params["service"],
	}
	var err error
	if tr.scopes, err = parseScopes(ch.Params["scope"]); err != nil {
		return 0, err
	}
	if u, err := url.Parse(tr.realm); err == nil {
		tr.realmBound = originOf(u) == tr.origin || r.Bound(u) || c.realmOrigins.contains(u)
	}
	c.mu.Lock()
	for i, s := range tr.scopes {
		if h := c.held[heldKey{tr.origin, s.resource}]; h != nil && s.actions != nil && h.realm == tr.realm && h.service == tr.service {
			if u := unionActions(s.actions, h.actions); len(u) <= maxActions {
				tr.scopes[i].actions = u
			}
		}
	}
	c.mu.Unlock()
	v, err := c.token(r, tr, r.Request().Header.Get(r.Field()))
	if err != nil || v == "" {
		return 0, err
	}
	r.State = v
	return RetryChallenge, nil
}

// tokenRequest is one token to obtain: for a registry origin, from a realm,
// for a service and scopes.
type tokenRequest struct {
	registry       url.URL // the request's URL, for the realm policy
	origin         origin
	realm, service string
	scopes         []scope
	// realmBound: the realm's origin is the registry's, in
	// Transport.Origins or in RegistryOptions.RealmOrigins, so the password
	// or refresh token may go there.
	realmBound bool
}

// key identifies the fetch that concurrent requests share.
func (tr *tokenRequest) key() string {
	var b strings.Builder
	b.WriteString(canonicalOrigin(&tr.registry))
	b.WriteByte(' ')
	b.WriteString(tr.realm)
	b.WriteByte(' ')
	b.WriteString(tr.service)
	for _, s := range tr.scopes {
		b.WriteByte(' ')
		b.WriteString(s.String())
	}
	return b.String()
}

// token returns a token for tr that is not refused: a held one, or one
// fetched once for all the requests that want it at the same time.
func (c *registryCredentials) token(r *AuthRequest, tr *tokenRequest, refused string) (string, error) {
	if v := c.cached(tr, refused); v != "" {
		return v, nil
	}
	ctx, base := r.Context(), r.Base()
	for attempt := 0; ; attempt++ {
		results := c.fetches.DoChan(tr.key(), func() (any, error) {
			// A fetch that just finished may have brought what is needed.
			if v := c.cached(tr, refused); v != "" {
				return v, nil
			}
			// Once started, the fetch runs to its end whoever still waits:
			// a realm may have rotated the refresh token, and dropping its
			// answer would leave only the spent one (DESIGN.md, Token
			// fetches). It keeps the starter's values, not its cancellation.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
			defer cancel()
			return c.fetch(fctx, base, tr)
		})
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case res := <-results:
			v, _ := res.Val.(string)
			// A fetch shared with another request may have run out of
			// time, or brought the very token this request had refused:
			// one more fetch of its own.
			ctxErr := errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)
			if attempt == 0 && res.Shared && (ctxErr || res.Err == nil && v == refused) {
				continue
			}
			return v, res.Err
		}
	}
}

// cached returns the token held for all of tr's scopes, fresh, with enough
// actions, and other than refused; "" if there is none.
func (c *registryCredentials) cached(tr *tokenRequest, refused string) string {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	v := ""
	for _, s := range tr.scopes {
		h := c.held[heldKey{tr.origin, s.resource}]
		if h == nil || !h.fresh(now) || h.realm != tr.realm || h.service != tr.service || !covers(h.actions, s.actions) || v != "" && h.value != v {
			return ""
		}
		v = h.value
	}
	if v == refused {
		return ""
	}
	return v
}

// store keeps a fetched token for each resource of tr.
func (c *registryCredentials) store(tr *tokenRequest, value string, expiry time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = make(map[heldKey]*heldToken)
	}
	if len(c.held)+len(tr.scopes) > maxHeldTokens {
		now := c.opts.Now()
		for k, h := range c.held {
			if !h.fresh(now) {
				delete(c.held, k)
			}
		}
		if len(c.held)+len(tr.scopes) > maxHeldTokens {
			clear(c.held) // bounded memory over keeping every repository's token
		}
	}
	for _, s := range tr.scopes {
		c.held[heldKey{tr.origin, s.resource}] = &heldToken{value: value, actions: s.actions, realm: tr.realm, service: tr.service, expiry: expiry}
	}
}

// realmState returns the state kept for realm, creating it. c.mu must be held.
func (c *registryCredentials) realmState(realm string) *realmState {
	st := c.realms[realm]
	if st == nil {
		if len(c.realms) >= maxRealms {
			clear(c.realms)
		}
		if c.realms == nil {
			c.realms = make(map[string]*realmState)
		}
		st = &realmState{refresh: make(map[string]string)}
		c.realms[realm] = st
	}
	return st
}

// refreshToken returns the refresh token to use with realm and service.
func (c *registryCredentials) refreshToken(realm, service string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt, ok := c.realmState(realm).refresh[service]; ok {
		return rt
	}
	return c.opts.RefreshToken
}

func (c *registryCredentials) setRefreshToken(realm, service, rt string) {
	c.mu.Lock()
	c.realmState(realm).refresh[service] = rt
	if rt != "" {
		// Remembered for redaction even after it is refused or replaced: a
		// realm may echo an old one in an error.
		if len(c.heldRefresh) >= maxRealms {
			c.heldRefresh = c.heldRefresh[1:]
		}
		c.heldRefresh = append(c.heldRefresh, rt)
	}
	c.mu.Unlock()
}

func (c *registryCredentials) postUnsupported(realm string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.realmState(realm).noPOST
}

func (c *registryCredentials) setPostUnsupported(realm string) {
	c.mu.Lock()
	c.realmState(realm).noPOST = true
	c.mu.Unlock()
}
