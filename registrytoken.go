package reauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// This file is the token endpoint side of the registry token flow: which
// realms may be asked, how (GET with Basic, or the OAuth2 POST form), and
// what a usable answer is. Docker's token.md and oauth.md in the
// distribution spec describe the protocol.

// MaxTokenResponse is how much of a token realm's response is read; a larger
// response is refused: a final [*TokenError] whose Err says so.
const MaxTokenResponse = 1 << 20

const (
	defaultTokenLifetime = 60 * time.Second // token.md: expires_in defaults to 60
	minTokenLifetime     = 60 * time.Second // token.md: never less than 60 s to live
	maxTokenLifetime     = 365 * 24 * time.Hour
	maxRealmRedirects    = 3
)

// fetch checks tr's realm against the policy, obtains a token from it,
// stores it and returns the field value to send.
func (c *registryCredentials) fetch(ctx context.Context, base http.RoundTripper, tr *tokenRequest) (any, error) {
	realm, err := url.Parse(tr.realm)
	if err != nil {
		return nil, realmNotAllowed("(unparseable)", "is not a URL")
	}
	addrs, err := c.checkRealm(ctx, &tr.registry, realm)
	if err != nil {
		return nil, err
	}
	if !tr.realmBound && (c.basic != nil || c.refreshToken(tr.realm, tr.service) != "") {
		// The registry names the realm; without this check a registry (or
		// whoever answers for it) could have the password sent anywhere
		// (DESIGN.md, invariant 4).
		return nil, realmNotAllowed(redactURL(realm), "is not in Transport.Origins or RegistryOptions.RealmOrigins; add its origin there to send the registry credentials to it")
	}
	if c.basic != nil && c.basic.err != nil {
		return nil, Final(c.basic.err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	client := &http.Client{Transport: base}
	var guard *realmGuard
	if !c.opts.AllowPrivateRealms {
		guard = &realmGuard{registry: &tr.registry, base: base, transport: c.opts.RealmTransport}
		guard.pin(realm, addrs)
		defer guard.closeIdleConnections()
		client.Transport = guard
	}
	client.CheckRedirect = c.redirectPolicy(&tr.registry, guard)
	tok, err := c.exchangeToken(ctx, client, realm, tr)
	if err != nil {
		return nil, err
	}
	if tok.refreshToken != "" {
		c.setRefreshToken(tr.realm, tr.service, tok.refreshToken)
	}
	c.store(tr, "Bearer "+tok.token, tok.expiry)
	return "Bearer " + tok.token, nil
}

// exchangeToken asks the realm for a token: with the OAuth2 form when there
// is a refresh token or PasswordGrant is set and the realm has not refused
// POST, else with GET.
func (c *registryCredentials) exchangeToken(ctx context.Context, client *http.Client, realm *url.URL, tr *tokenRequest) (*tokenResponse, error) {
	if !c.postUnsupported(tr.realm) {
		form := url.Values{}
		rt := c.refreshToken(tr.realm, tr.service)
		switch {
		case rt != "":
			form.Set("grant_type", "refresh_token")
			form.Set("refresh_token", rt)
		case c.opts.PasswordGrant && c.basic != nil:
			form.Set("grant_type", "password")
			form.Set("username", c.username)
			form.Set("password", c.password)
			form.Set("access_type", "offline") // ask for a refresh token
		}
		if len(form) > 0 {
			tok, status, err := c.post(ctx, client, realm, tr, form)
			switch {
			case err == nil:
				return tok, nil
			case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
				// Not every realm speaks OAuth2 (oauth.md): GET from now on.
				c.setPostUnsupported(tr.realm)
			case rt != "" && c.basic != nil && (status == http.StatusBadRequest || status == http.StatusUnauthorized):
				// The refresh token was refused; the password may still do.
				c.setRefreshToken(tr.realm, tr.service, "")
			default:
				return nil, err
			}
		}
	}
	return c.get(ctx, client, realm, tr)
}

// get asks for a token with GET, service and scope query parameters, and
// Basic credentials unless anonymous (token.md).
func (c *registryCredentials) get(ctx context.Context, client *http.Client, realm *url.URL, tr *tokenRequest) (*tokenResponse, error) {
	u := *realm
	q := u.Query()
	if tr.service != "" {
		q.Set("service", tr.service)
	}
	for _, s := range tr.scopes {
		if s.resource != "" {
			q.Add("scope", s.String())
		}
	}
	if c.username != "" {
		q.Set("account", c.username)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.basic != nil {
		if err := c.checkPasswordScheme(realm); err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", c.basic.value)
	}
	tok, _, err := c.do(client, req, realm)
	return tok, err
}

// post asks for a token with the OAuth2 form of oauth.md.
func (c *registryCredentials) post(ctx context.Context, client *http.Client, realm *url.URL, tr *tokenRequest, form url.Values) (*tokenResponse, int, error) {
	if form.Get("password") != "" {
		if err := c.checkPasswordScheme(realm); err != nil {
			return nil, 0, err
		}
	}
	form.Set("client_id", c.opts.ClientID)
	if tr.service != "" {
		form.Set("service", tr.service)
	}
	var scopes []string
	for _, s := range tr.scopes {
		if s.resource != "" {
			scopes = append(scopes, s.String())
		}
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(client, req, realm)
}

// checkPasswordScheme refuses to send the password to a plain-http realm
// that is not loopback unless the user opted in (DESIGN.md, invariant 4).
func (c *registryCredentials) checkPasswordScheme(realm *url.URL) error {
	if realm.Scheme == "http" && !isLoopback(realm.Hostname()) && !c.opts.InsecureAllowHTTP {
		return realmNotAllowed(redactURL(realm), "is plain http and the password would cross the network in the clear; set RegistryOptions.InsecureAllowHTTP")
	}
	return nil
}

// do sends a token request and reads the answer. The status is returned
// for the POST fallback.
func (c *registryCredentials) do(client *http.Client, req *http.Request, realm *url.URL) (*tokenResponse, int, error) {
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL with the query
		}
		if errors.Is(err, ErrRealmNotAllowed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, err
		}
		if msg, echoed := redactSecrets(reasonText(err), c.secrets()); echoed {
			// net/http quotes a malformed response; the cause's text would
			// keep what the realm echoed.
			return nil, 0, fmt.Errorf("reauth: registry token realm %s: %s", redactURL(realm), msg)
		}
		return nil, 0, errorf("reauth: registry token realm %s: %w", redactURL(realm), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		te := &TokenError{Endpoint: redactURL(realm), Method: req.Method, StatusCode: resp.StatusCode}
		te.Code, te.Description = c.tokenErrorFields(readErrorBody(resp.Body))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests {
			return nil, resp.StatusCode, te // may pass: the retrying client may try again
		}
		te.final = true
		return nil, resp.StatusCode, te
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenResponse+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reauth: reading the response of registry token realm %s: %w", redactURL(realm), err)
	}
	tok, err := parseTokenResponse(body, c.opts.Now())
	if err != nil {
		return nil, resp.StatusCode, &TokenError{Endpoint: redactURL(realm), Method: req.Method, StatusCode: resp.StatusCode, Err: err, final: true}
	}
	return tok, resp.StatusCode, nil
}

// tokenErrorFields picks the error of a realm's error body: OAuth2's
// error/error_description (RFC 6749 §5.2), the registry's errors array, or
// Docker Hub's details. Anything that contains a secret (secrets) is
// dropped: error strings never carry secrets. What is kept is
// cleaned as an OAuth2 endpoint's error is (cleanField): a realm must not be
// able to write lines or reorder text in the caller's logs.
func (c *registryCredentials) tokenErrorFields(body []byte) (code, description string) {
	var doc struct {
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		Details     string          `json:"details"`
		Errors      []RegistryError `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return "", ""
	}
	code, description = doc.Error, doc.Description
	if code == "" && len(doc.Errors) > 0 {
		code, description = doc.Errors[0].Code, doc.Errors[0].Message
	}
	if description == "" {
		description = doc.Details
	}
	secrets := c.secrets()
	return cleanField(code, secrets), cleanField(description, secrets)
}

// secrets returns what the realm could echo of what it was sent or held:
// the password (in its echoForms and inside Basic's base64) and the refresh
// tokens, given, learned, refused or replaced.
func (c *registryCredentials) secrets() []string {
	s := append(echoForms(c.password), echoForms(c.opts.RefreshToken)...)
	if c.basic != nil {
		s = append(s, strings.TrimPrefix(c.basic.value, "Basic "))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.heldRefresh {
		s = append(s, echoForms(rt)...)
	}
	return s
}

// tokenResponse is a usable answer of a realm.
type tokenResponse struct {
	token        string
	refreshToken string
	expiry       time.Time
}

// badTokenPrefix opens the text of every error of parseTokenResponse.
const badTokenPrefix = "no usable token: "

// badTokenResponse is an error of parseTokenResponse: the Err of a final
// [*TokenError] saying what was wrong with a 200 answer.
func badTokenResponse(format string, args ...any) error {
	return fmt.Errorf(badTokenPrefix+format, args...)
}

// parseTokenResponse reads a realm's JSON answer (token.md): token or
// access_token (equivalent; access_token wins, as in Docker), expires_in in
// seconds (60 when missing), issued_at (RFC 3339), refresh_token. Its errors
// say what was wrong and never hold a token.
func parseTokenResponse(body []byte, now time.Time) (*tokenResponse, error) {
	if len(body) > MaxTokenResponse {
		return nil, badTokenResponse("the response is larger than %d bytes", MaxTokenResponse)
	}
	var doc struct {
		Token        string  `json:"token"`
		AccessToken  string  `json:"access_token"`
		ExpiresIn    float64 `json:"expires_in"`
		IssuedAt     string  `json:"issued_at"`
		RefreshToken string  `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		// Not err itself: its text may quote the body.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, badTokenResponse("the response is not JSON (syntax error at byte %d)", se.Offset)
		case errors.As(err, &te):
			return nil, badTokenResponse("the field %q is not a %s", te.Field, te.Type)
		}
		return nil, badTokenResponse("the response is not a JSON object")
	}
	tok := doc.AccessToken
	if tok == "" {
		tok = doc.Token
	}
	switch {
	case tok == "":
		return nil, badTokenResponse("the response has neither token nor access_token")
	case !isToken68(tok):
		return nil, badTokenResponse("the token (%d bytes) is not a valid b64token (RFC 6750 §2.1)", len(tok))
	}
	// A token lives at least minTokenLifetime, as token.md asks of realms
	// and Docker's client assumes: a shorter one would be stale before the
	// next request, which would fetch a token every time.
	lifetime := defaultTokenLifetime
	if doc.ExpiresIn > 0 {
		lifetime = time.Duration(min(max(doc.ExpiresIn, minTokenLifetime.Seconds()), maxTokenLifetime.Seconds()) * float64(time.Second))
	}
	// A token issued in the past has lived part of its life. One issued in
	// the future, or so far in the past that it would arrive stale, tells of
	// clock skew between realm and client: its life counts from now.
	issued := now
	if t, err := time.Parse(time.RFC3339, doc.IssuedAt); err == nil && t.Before(now) && t.Add(lifetime).After(now.Add(tokenExpiryLeeway)) {
		issued = t
	}
	return &tokenResponse{token: tok, refreshToken: doc.RefreshToken, expiry: issued.Add(lifetime)}, nil
}

// checkRealm is the realm policy. The realm must be an absolute https URL
// without userinfo; plain http only on loopback or for a plain-http
// registry. On another host than the registry's it must resolve to public
// addresses only, unless AllowPrivateRealms: the registry chooses the realm,
// and must not be able to make the client send requests into its own network
// (the SSRF reported against go-containerregistry). The check runs before
// anything is dialled. It returns the addresses it resolved and checked when
// it had to resolve the host (resolvesRealmHost): those are the only
// addresses the realm's requests may dial (realmGuard), so that a second DNS
// answer cannot move them (DNS rebinding).
func (c *registryCredentials) checkRealm(ctx context.Context, registry, realm *url.URL) ([]netip.Addr, error) {
	fail := func(reason string) error { return realmNotAllowed(redactURL(realm), reason) }
	host := realm.Hostname()
	switch {
	case realm.Scheme != "https" && realm.Scheme != "http" || host == "":
		return nil, fail("is not an absolute http(s) URL")
	case realm.User != nil:
		return nil, fail("carries userinfo")
	case realm.Scheme == "http" && !isLoopback(host) && registry.Scheme != "http":
		return nil, fail("is plain http for an https registry; the token would cross the network in the clear")
	case strings.EqualFold(host, registry.Hostname()), c.opts.AllowPrivateRealms:
		return nil, nil
	}
	var addrs, pinned []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if isLoopback(host) {
		addrs = []netip.Addr{netip.IPv6Loopback()}
	} else if !isASCII(host) {
		// net/http dials its IDNA form, which is not the name checked.
		return nil, fail("has a host name that is not ASCII; name it in its ASCII (punycode) form")
	} else {
		lookup := c.opts.LookupNetIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return nil, fmt.Errorf("reauth: resolving registry token realm %s: %w", redactURL(realm), err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("reauth: registry token realm %s resolves to no address", redactURL(realm))
		}
		pinned = addrs
	}
	for _, a := range addrs {
		a = a.Unmap()
		if isPublicAddr(a) || a.IsLoopback() && isLoopback(registry.Hostname()) {
			continue
		}
		return nil, fail(fmt.Sprintf("is on another host than the registry and resolves to the non-public address %s; set RegistryOptions.AllowPrivateRealms to allow it", a))
	}
	return pinned, nil
}

// resolvesRealmHost reports whether the realm policy resolves the host of
// u, a realm of registry: a name other than localhost, on another host than
// the registry's. An IP address and localhost mean the same at the check
// and at the dial; a name may not.
func resolvesRealmHost(registry, u *url.URL) bool {
	host := u.Hostname()
	if strings.EqualFold(host, registry.Hostname()) || isLoopback(host) {
		return false
	}
	_, err := netip.ParseAddr(host)
	return err != nil
}

// nonPublic lists special-purpose ranges (RFC 6890) that netip's predicates
// do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"; Linux routes it to the host
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64, may embed a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
}

// isPublicAddr reports whether a is a global unicast address outside the
// private and special-purpose ranges.
func isPublicAddr(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// redirectPolicy lets a realm redirect a few times, each target passing the
// realm policy (and, on a name, dialled only at the addresses checked). Basic credentials follow a redirect only within the realm's
// origin, and a POST (whose form holds the password) does not leave it.
func (c *registryCredentials) redirectPolicy(registry *url.URL, guard *realmGuard) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRealmRedirects {
			return realmNotAllowed(redactURL(via[0].URL), fmt.Sprintf("redirected more than %d times", maxRealmRedirects))
		}
		addrs, err := c.checkRealm(req.Context(), registry, req.URL)
		if err != nil {
			return err
		}
		if guard != nil {
			guard.pin(req.URL, addrs)
		}
		if originOf(req.URL) != originOf(via[0].URL) {
			if via[0].Method == http.MethodPost {
				return realmNotAllowed(redactURL(via[0].URL), "redirected the OAuth2 form to another origin")
			}
			req.Header.Del("Authorization")
		}
		return nil
	}
}

// realmGuard sends the requests of one token fetch when the realm policy
// applies (not AllowPrivateRealms). A request to the registry's own host, an
// IP address or localhost goes through Base, as the registry's requests do:
// what the policy checked of it cannot change. A request to any other host,
// a name, goes through a clone of an *http.Transport whose dialer connects
// only to the addresses the policy resolved and checked for that name
// (pinned), so that a name answering a public address to the check and an
// internal one to the dial (DNS rebinding) cannot aim it at the internal
// network. An opaque Base cannot be made to do that, so it is not used for
// those requests (see RegistryOptions.RealmTransport).
//
// The clone is made for one fetch and its connections closed after it: its
// pool must not serve a fetch whose registry has another policy.
type realmGuard struct {
	registry  *url.URL
	base      http.RoundTripper
	transport *http.Transport // RegistryOptions.RealmTransport; nil: base

	mu      sync.Mutex
	pinned  map[string][]netip.Addr // checked addresses by lower-case host
	proxies map[string]bool         // host:port of the proxies the clone routed to
	clone   *http.Transport
}

// pin records the addresses checked for u's host; nil when the host is not
// resolved (resolvesRealmHost).
func (g *realmGuard) pin(u *url.URL, addrs []netip.Addr) {
	if addrs == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pinned == nil {
		g.pinned = make(map[string][]netip.Addr)
	}
	g.pinned[strings.ToLower(u.Hostname())] = addrs
}

// RoundTrip sends req through Base or the pinning clone, as realmGuard says.
func (g *realmGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !resolvesRealmHost(g.registry, req.URL) {
		return g.base.RoundTrip(req)
	}
	clone, err := g.pinningTransport(req.URL)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return clone.RoundTrip(req)
}

// pinningTransport returns the clone that dials pinned addresses, making it
// on first use.
func (g *realmGuard) pinningTransport(realm *url.URL) (*http.Transport, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clone != nil {
		return g.clone, nil
	}
	ht := g.transport
	if ht == nil {
		var ok bool
		if ht, ok = g.base.(*http.Transport); !ok {
			return nil, realmNotAllowed(redactURL(realm), fmt.Sprintf("is on another host than the registry, and Transport.Base (a %T) is not an *http.Transport, so reauth cannot make it dial only the addresses the realm policy checked; set RegistryOptions.RealmTransport", g.base))
		}
	}
	clone := ht.Clone()
	dial := clone.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext // as http.DefaultTransport
	}
	// DialContext takes priority over Dial. DialTLSContext and DialTLS
	// would be handed the name, not a checked address: net/http's own TLS
	// over DialContext is used instead.
	clone.DialContext, clone.DialTLSContext = g.dialer(dial), nil
	//lint:ignore SA1019 a deprecated DialTLS would still be used if set
	clone.DialTLS = nil
	if proxy := clone.Proxy; proxy != nil {
		clone.Proxy = func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if u != nil && err == nil {
				g.mu.Lock()
				if g.proxies == nil {
					g.proxies = make(map[string]bool)
				}
				g.proxies[proxyAddr(u)] = true
				g.mu.Unlock()
			}
			return u, err
		}
	}
	g.clone = clone
	return clone, nil
}

// dialer wraps dial to connect to a realm's host only at its pinned
// addresses, in the order the resolver gave them. A proxy the clone routes
// to is dialled as it is: the proxy resolves the realm's host itself.
func (g *realmGuard) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		addrs, pinned := g.pinned[strings.ToLower(host)]
		proxy := g.proxies[addr]
		g.mu.Unlock()
		switch {
		case !pinned && proxy:
			return dial(ctx, network, addr)
		case !pinned:
			// Every host the clone is asked for was checked first; this
			// would be a bug, and it fails closed.
			return nil, fmt.Errorf("reauth: registry token realm host %s was not checked by the realm policy", host)
		}
		var errs []error
		for _, a := range addrs {
			conn, err := dial(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}

// closeIdleConnections closes the clone's connections once the fetch is done.
func (g *realmGuard) closeIdleConnections() {
	g.mu.Lock()
	clone := g.clone
	g.mu.Unlock()
	if clone != nil {
		clone.CloseIdleConnections()
	}
}

// proxyAddr is the host:port net/http dials for the proxy u.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
}
