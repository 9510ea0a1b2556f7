package reauth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// DefaultOAuth2Skew is how long before its expiry a token is replaced when
// OAuth2Options.Skew is zero: time for a request in flight to arrive, and
// for a modest difference between the client's and the server's clocks.
const DefaultOAuth2Skew = 30 * time.Second

// DefaultOAuth2FetchTimeout is OAuth2Options.FetchTimeout when it is zero:
// token endpoints answer within a second or two, and a fetch that takes
// longer than this is taken to be hung.
const DefaultOAuth2FetchTimeout = 30 * time.Second

// maxAccessToken bounds the access token reauth puts in a header; servers
// refuse far smaller headers than this anyway.
const maxAccessToken = 64 << 10

// OAuth2Options configure OAuth2 credentials. The zero value is ready to use.
type OAuth2Options struct {
	// Skew is how long before its expiry a token is replaced, so that it
	// does not expire on the way. Zero means DefaultOAuth2Skew, negative
	// means at expiry. A token that lives less than twice Skew is replaced
	// at half its life.
	Skew time.Duration

	// StepUp, if set, answers step-up challenges (RFC 9470
	// insufficient_user_authentication) and claims challenges
	// (insufficient_claims): it obtains a token that satisfies ch, typically
	// by sending the user through the authorization endpoint again. The
	// refused request is retried once with it, and it replaces the cached
	// token. Returning nil, nil declines: the request fails with an
	// [*UnauthorizedError] wrapping [ErrStepUpRequired]. Concurrent
	// challenges share one call, which a refresh of the token never joins
	// (nor it a refresh). ctx ends when no request waits for the call any
	// more; it carries the client for token requests (see HTTPClient) as
	// the oauth2.HTTPClient value, so that an x/oauth2 exchange made with it
	// does not use http.DefaultClient.
	StepUp func(ctx context.Context, ch *StepUpChallenge) (*oauth2.Token, error)

	// OnToken, if set, is called with each token obtained from the source,
	// before it is used: save it there. It is called also when every request
	// that waited for the token has given up (see FetchTimeout). For
	// [RefreshToken] the token carries the refresh token to use next,
	// rotated or not. If OnToken returns an error the token is not used and
	// the requests waiting fail with that error; the next request fetches
	// again, with the newest refresh token.
	OnToken func(ctx context.Context, tok *oauth2.Token) error

	// HTTPClient sends the token requests of [ClientCredentials] and
	// [RefreshToken] (passed to x/oauth2 as the oauth2.HTTPClient context
	// value). Nil means a client over the Base of the [Transport] whose
	// request started the fetch: token requests never go through a reauth
	// Transport, which would wait for the very token being fetched, and do
	// not depend on what http.DefaultClient has become. A client set here
	// must not be one over a Transport bound to the token endpoint either.
	// A source given to [OAuth2WithOptions] brings its own client.
	HTTPClient *http.Client

	// FetchTimeout bounds each fetch from the source. Once started, a fetch
	// runs to completion on a context of its own, whose values are those of
	// the request that started it and which ends after FetchTimeout: the
	// requests waiting for it still return when their own contexts end, but
	// the token it brings is cached and handed to OnToken all the same, so
	// that a refresh token the endpoint has rotated is not lost. A source
	// that takes no context ([OAuth2WithOptions]) cannot be stopped: once
	// its fetch is older than FetchTimeout (by Now), the next request that
	// needs a token starts a new fetch instead of joining it. Zero or
	// negative means [DefaultOAuth2FetchTimeout]. The StepUp hook is not
	// bounded by it.
	FetchTimeout time.Duration

	// Now is the clock that decides expiry and the age of a fetch, and
	// dates DPoP proofs and client assertions (their iat, which servers
	// compare with their own clock). Nil means time.Now.
	Now func() time.Time

	// DPoP, if set, sender-constrains tokens (RFC 9449): the token requests
	// of ClientCredentials and RefreshToken carry a DPoP proof by this key,
	// and the tokens, issued with token_type DPoP, are sent as
	// "Authorization: DPoP <token>" with a fresh proof on every attempt (see
	// [DPoPProof] for the keys it takes; any crypto.Signer, one in a KMS
	// included). Server nonces are handled (RFC 9449 §8, §9): remembered per
	// token endpoint and per origin, retried once when asked for. A token
	// endpoint that issues a Bearer token instead fails the fetch, unless
	// AllowBearerWithDPoP. A source given to [OAuth2WithOptions] must itself
	// obtain tokens bound to this key. Formatting OAuth2Options never prints
	// the key.
	DPoP crypto.Signer

	// AllowBearerWithDPoP accepts a Bearer token from a token endpoint asked
	// for a DPoP-bound one (a server without DPoP support answers so, RFC
	// 9449 §5), and sends it as Bearer, without a proof. False: such a token
	// is an error, since a Bearer token is usable by anyone who holds it.
	AllowBearerWithDPoP bool

	// ClientKey, if set, authenticates the client with private_key_jwt (RFC
	// 7523 §2.2) instead of its secret: each token request of
	// ClientCredentials and RefreshToken carries a fresh client_assertion
	// signed by this key (iss = sub = the client ID, aud the token endpoint,
	// a unique jti, a one-minute exp), and no client secret. Keys as for
	// DPoP; with or without DPoP.
	ClientKey crypto.Signer

	// ClientKeyID is the "kid" header of the client assertions, for servers
	// that hold several keys of the client. Empty: none.
	ClientKeyID string

	// Store, if set, shares tokens with the other processes that use it
	// (replicas of a service, runs of a CLI), for [ClientCredentials] and
	// [RefreshToken]; nil: this process only. The in-process cache stays in
	// front: the store is read only when this process has no usable token.
	// Then one process in the fleet fetches under the store's lease while
	// the others poll the store (from every 10 ms to every 250 ms) for what
	// it stores, for at most one lease (FetchTimeout plus 4 s); a holder
	// that died loses its lease then and a waiter takes over. A refusal
	// invalidates the stored token only if the store still holds that very
	// token; a refresh uses the stored refresh token and stores the rotated
	// one, so no process presents a spent refresh token. A token the
	// endpoint gave without expires_in is stored with the exp claim of the
	// JWT it is (read, not verified), else with an expiry one hour on. A
	// cool-down the endpoint asks for (429 or 503 with Retry-After, or 3 5xx
	// in a row: 30 s) is stored for the fleet. Each store call is bounded by
	// 2 s; a store that fails or is slow is reported as [EventStoreFault]
	// and a warning in the Transport's Logger, and the credentials go on
	// with their own cache. The key is [StoreKey] of the token endpoint,
	// client id, scopes and audience (and the DPoP key's thumbprint): the
	// tokens of one RefreshToken grant per key, so give the grants of
	// different users of one client different stores. [OAuth2WithOptions]
	// cannot say which endpoint and client its source uses and refuses a
	// Store.
	Store TokenStore
}

// OAuth2 returns credentials that send tokens from src as Bearer tokens
// (RFC 6750) from the first request to a bound origin. It is
// [OAuth2WithOptions] with the zero OAuth2Options.
func OAuth2(src oauth2.TokenSource) Credentials {
	return OAuth2WithOptions(src, OAuth2Options{})
}

// OAuth2WithOptions returns credentials that keep a token from src and send
// it as a Bearer token (RFC 6750) from the first request to a bound origin.
//
// Unlike oauth2.Transport, which trusts the token's expiry alone, they act on
// what the server says. A token is replaced shortly before it expires (see
// OAuth2Options.Skew), and when a bound origin refuses it with 401 and a
// Bearer challenge (or no challenge at all): the refused token is dropped, a
// new one fetched and the request retried once. A 401 for a token that was
// already replaced is answered with the current token, and concurrent 401s
// for the same token share one fetch (DESIGN.md, invariant 6). RFC 6750 §3.1:
// error="invalid_request" and "insufficient_scope" are final, with no fetch;
// 403 is always final.
//
// src must fetch a new token when called. Sources made by x/oauth2
// (Config.TokenSource, clientcredentials.Config.TokenSource,
// ReuseTokenSource) cache their token and return the refused one again,
// which ends the request with an [*UnauthorizedError] wrapping
// [ErrSameCredentials]; use [ClientCredentials] or [RefreshToken] instead.
// src.Token takes no context: a request whose context ends returns at once,
// while the fetch finishes in the background for the requests that follow,
// until it is older than OAuth2Options.FetchTimeout. Nor can reauth choose
// the HTTP client src uses: a source from x/oauth2 uses the oauth2.HTTPClient
// value of the context it was made with, else http.DefaultClient. If that is
// a client over a reauth Transport bound to the token endpoint's origin, the
// token request waits for its own token until its context ends; make such a
// source with a context whose oauth2.HTTPClient is a client over a plain
// transport.
func OAuth2WithOptions(src oauth2.TokenSource, opts OAuth2Options) Credentials {
	if src == nil {
		return &bearerCredentials{err: errors.New("reauth: OAuth2 needs an oauth2.TokenSource, got nil")}
	}
	if opts.Store != nil {
		return &bearerCredentials{err: configError("reauth: OAuth2Options.Store needs ClientCredentials or RefreshToken, whose token endpoint and client identify the stored token; OAuth2WithOptions cannot tell them from its source")}
	}
	c := newOAuth2Credentials(opts)
	c.source = c.fromSource(func(context.Context) (*oauth2.Token, error) { return src.Token() }, nil)
	return c.credentials()
}

// ClientCredentials returns OAuth2 credentials that obtain tokens with the
// client credentials grant of cfg (RFC 6749 §4.4), with the behaviour of
// [OAuth2WithOptions]. Each fetch is a token request of its own, sent with
// OAuth2Options.HTTPClient or the Transport's Base and bounded by
// OAuth2Options.FetchTimeout: cfg.TokenSource would cache, and its cache
// cannot be told that a token was refused.
func ClientCredentials(cfg *clientcredentials.Config, opts OAuth2Options) Credentials {
	if cfg == nil {
		return &bearerCredentials{err: errors.New("reauth: ClientCredentials needs a *clientcredentials.Config, got nil")}
	}
	c := newOAuth2Credentials(opts)
	c.setIdentity(tokenIdentity(cfg.TokenURL, cfg.ClientID, cfg.Scopes, audienceOf(cfg.EndpointParams), opts))
	cfg = c.clientCredentialsConfig(cfg)
	c.source = c.fromSource(cfg.Token, func() []string { return clientSecrets(cfg.ClientID, cfg.ClientSecret) })
	return c.credentials()
}

// RefreshToken returns OAuth2 credentials that obtain access tokens with the
// refresh token grant of cfg (RFC 6749 §6), starting from tok.RefreshToken,
// with the behaviour of [OAuth2WithOptions]. tok's access token, if any, is
// used until it expires or is refused. When the endpoint rotates the refresh
// token, the new one is kept and used next; OAuth2Options.OnToken receives
// every token so that it can be saved. Refreshes are never concurrent, and
// one that was sent is completed even when the requests waiting for it give
// up (see OAuth2Options.FetchTimeout), so a rotated refresh token is neither
// presented twice nor lost. Token requests go as for [ClientCredentials].
func RefreshToken(cfg *oauth2.Config, tok *oauth2.Token, opts OAuth2Options) Credentials {
	switch {
	case cfg == nil:
		return &bearerCredentials{err: errors.New("reauth: RefreshToken needs an *oauth2.Config, got nil")}
	case tok == nil || tok.RefreshToken == "":
		return &bearerCredentials{err: errors.New("reauth: RefreshToken needs a token with a refresh token")}
	}
	c := newOAuth2Credentials(opts)
	cfg = c.refreshConfig(cfg)
	r := &refresher{cfg: cfg, refreshToken: tok.RefreshToken, turn: make(chan struct{}, 1)}
	c.refresher = r
	c.setIdentity(tokenIdentity(cfg.Endpoint.TokenURL, cfg.ClientID, cfg.Scopes, "", opts))
	c.source = c.fromSource(r.token, r.secrets)
	if tok.AccessToken != "" {
		if value, err := c.tokenValue(tok); err == nil {
			c.cur.Store(&cachedToken{value: value, refreshAt: c.refreshAt(tok)})
		}
	}
	return c.credentials()
}

// refresher fetches with the refresh token grant and keeps the refresh
// token the endpoint returns (RFC 6749 §6: it may issue a new one).
type refresher struct {
	cfg  *oauth2.Config
	turn chan struct{} // a token of 1: one refresh at a time, waited for with a context

	mu           sync.Mutex
	refreshToken string
}

func (r *refresher) token(ctx context.Context) (*oauth2.Token, error) {
	// A refresh older than FetchTimeout may still be running; presenting
	// the same refresh token again meanwhile would look like token theft to
	// endpoints that detect reuse (RFC 9700 §4.14.2) and revoke the grant.
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.turn }()
	r.mu.Lock()
	rt := r.refreshToken
	r.mu.Unlock()
	// A source over a token without access token refreshes at once, and
	// fills in the old refresh token when the endpoint sends none.
	tok, err := r.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" {
		r.mu.Lock()
		r.refreshToken = tok.RefreshToken
		r.mu.Unlock()
	}
	return tok, nil
}

func (r *refresher) secrets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(clientSecrets(r.cfg.ClientID, r.cfg.ClientSecret), r.refreshToken, url.QueryEscape(r.refreshToken))
}

// oauth2Credentials are the Credentials of OAuth2 and its siblings: a token
// cache over a source, with compare-and-invalidate on refusal.
type oauth2Credentials struct {
	opts         OAuth2Options
	skew         time.Duration
	fetchTimeout time.Duration
	now          func() time.Time
	source       fetchFunc

	// cur is the token to send; nil when there is none or it was refused.
	// Read without the lock on every request; written under mu.
	cur        atomic.Pointer[cachedToken]
	mu         sync.Mutex
	signer     *tokenTransport // signs token requests (DPoP, ClientKey); nil for neither
	refreshing *tokenFlight    // the fetch from the source in progress, if any
	steppingUp *tokenFlight    // the StepUp call in progress, if any
	flights    uint64          // flights started
	cachedSeq  uint64          // the seq of the flight whose token cur is, or newer

	// The shared store and the cool-down (oauth2store.go).
	refresher  *refresher    // RefreshToken's, for the stored refresh token
	identity   TokenIdentity // what StoreKey hashes
	storeKey   string        // StoreKey(identity), with a Store
	holder     string        // this credentials' lease holder id
	invalidate *cachedToken  // the refused token a refresh invalidates in the store; guarded by mu
	coolUntil  time.Time     // no token request before; guarded by mu
	coolShare  bool          // coolUntil is new and goes to the store; guarded by mu
	fails5xx   int           // 5xx answers in a row; guarded by mu
}

type cachedToken struct {
	value     string    // the Authorization field value: "Bearer " + access token
	refreshAt time.Time // when to replace it; zero: only when refused
	steppedUp bool      // from the StepUp hook: it answers step-up challenges

	aheadAt    time.Time     // when a background refresh starts; zero: none
	aheadTried atomic.Bool   // a background refresh was started for it
	tok        *oauth2.Token // as the source gave it, for the store
	stored     *StoredToken  // the store's entry it is, for compare-and-invalidate
}

func newOAuth2Credentials(opts OAuth2Options) *oauth2Credentials {
	c := &oauth2Credentials{opts: opts, skew: opts.Skew, fetchTimeout: opts.FetchTimeout, now: opts.Now}
	if c.fetchTimeout <= 0 {
		c.fetchTimeout = DefaultOAuth2FetchTimeout
	}
	switch {
	case c.skew == 0:
		c.skew = DefaultOAuth2Skew
	case c.skew < 0:
		c.skew = 0
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Authorize sends the token Refused chose for this request, else the cached
// token, fetching one first when there is none or it is about to expire.
func (c *oauth2Credentials) Authorize(r *AuthRequest) error {
	v, _ := r.State.(string)
	if v == "" {
		var err error
		if v, err = c.value(r); err != nil || v == "" {
			return err
		}
	}
	r.Set(r.Field(), v)
	return nil
}

// Refused replaces the refused token for the retry, unless the challenge
// says a new token of the same kind will not help. The refused token is the
// one the attempt carried: compare-and-invalidate against it.
func (c *oauth2Credentials) Refused(r *AuthRequest, refusal *Refusal) (Retry, error) {
	if refusal.Allowed&RetryChallenge == 0 {
		return RetryChallenge, nil // the ceiling refuses it; fetch nothing
	}
	v, err := c.answer(r, refusal, r.Request().Header.Get(r.Field()))
	if err != nil || v == "" {
		return 0, err
	}
	r.State = v
	return RetryChallenge, nil
}

// Observe does nothing: a bearer token learns nothing from responses.
func (c *oauth2Credentials) Observe(*AuthRequest, *http.Response) error { return nil }

// value returns the cached token, fetching one first when there is none or
// it is about to expire.
func (c *oauth2Credentials) value(r *AuthRequest) (string, error) {
	if ct := c.cur.Load(); ct != nil && c.fresh(ct) {
		if !ct.aheadAt.IsZero() && !c.now().Before(ct.aheadAt) {
			c.refreshAhead(r, ct)
		}
		return ct.value, nil
	}
	return c.replace(r, "", false)
}

// answer returns a token to replace refused, unless the challenge says a new
// token of the same kind will not help (RFC 6750 §3.1, RFC 9470 §3).
func (c *oauth2Credentials) answer(r *AuthRequest, refusal *Refusal, refused string) (string, error) {
	ch, ok := bearerChallenge(refusal.Challenges)
	if !ok && len(refusal.Challenges) > 0 {
		return "", nil // the server asks for another scheme
	}
	switch ch.Param("error") {
	case "invalid_request":
		return "", errMalformedRequest
	case "insufficient_scope":
		return "", errInsufficientScope
	case errInsufficientUserAuthentication, errInsufficientClaims:
		return c.stepUp(r, refused, ch)
	}
	// invalid_token, no error code, no challenge, or an extension's code: the
	// token itself was refused (RFC 9110 §15.5.2).
	return c.replace(r, refused, true)
}

// Reasons not to retry that the Transport reports in an *UnauthorizedError:
// declines, wrapping ErrNoCredentials as the Credentials doc says.
var (
	errMalformedRequest  = errorf(`reauth: the server says the request is malformed (error="invalid_request", RFC 6750 §3.1); a new token will not help (%w; %w)`, ErrInvalidRequest, ErrNoCredentials)
	errInsufficientScope = errorf(`reauth: the token lacks the scope the server requires (error="insufficient_scope", RFC 6750 §3.1); a new token from the same grant will not have it (%w)`, ErrNoCredentials)
)

// replace returns a token to use instead of refused ("" for none): the
// current one when another request has already replaced it, or the result of
// a refresh, shared with every request that needs one meanwhile. With drop,
// refused is known to be bad and is no longer handed out while the refresh
// runs.
func (c *oauth2Credentials) replace(r *AuthRequest, refused string, drop bool) (string, error) {
	c.mu.Lock()
	ct := c.cur.Load()
	if ct != nil && ct.value != refused && c.fresh(ct) {
		// Compare-and-invalidate: a late refusal of an older token must not
		// throw away the one that replaced it.
		c.mu.Unlock()
		return ct.value, nil
	}
	if drop && ct != nil && ct.value == refused {
		c.cur.Store(nil)
		c.invalidate = ct
	}
	fl := c.refreshLocked(r)
	c.mu.Unlock()
	return c.wait(r.Context(), fl)
}

// stepUp asks the StepUp hook for a token that meets ch. The refused token
// stays cached meanwhile: it is still good where no step-up is required.
// Only a token from the hook answers: a plain one would be refused again,
// spending the challenge's one retry.
func (c *oauth2Credentials) stepUp(r *AuthRequest, refused string, ch Challenge) (string, error) {
	sc, err := stepUpChallengeOf(ch)
	if err != nil {
		return "", err
	}
	hook := c.opts.StepUp
	if hook == nil {
		return "", errStepUpRequired
	}
	fetch := func(ctx context.Context) (*cachedToken, error) {
		tok, err := hook(ctx, sc)
		switch {
		case err != nil:
			return nil, fmt.Errorf("reauth: OAuth2Options.StepUp: %w", err)
		case tok == nil:
			return nil, errStepUpRequired
		}
		value, verr := c.tokenValue(tok)
		if verr != nil {
			return nil, verr
		}
		return &cachedToken{value: value, refreshAt: c.refreshAt(tok), steppedUp: true}, nil
	}
	c.mu.Lock()
	if ct := c.cur.Load(); ct != nil && ct.steppedUp && ct.value != refused && c.fresh(ct) {
		// Another request's step-up has brought a token since this one was
		// sent.
		c.mu.Unlock()
		return ct.value, nil
	}
	fl := c.stepUpLocked(r, fetch)
	c.mu.Unlock()
	return c.wait(r.Context(), fl)
}

// fromSource makes the fetch of a refresh from a token source: the token is
// checked and handed to OnToken; the flight caches it. ctx carries the
// client for token requests as oauth2.HTTPClient. secrets, if set, lists
// values the endpoint's error text must not show.
func (c *oauth2Credentials) fromSource(src func(context.Context) (*oauth2.Token, error), secrets func() []string) fetchFunc {
	return func(ctx context.Context) (*cachedToken, error) {
		tok, err := src(ctx)
		if err != nil {
			c.noteEndpointError(err)
			var s []string
			if secrets != nil {
				s = secrets()
			}
			return nil, tokenErrorOf(err, s...)
		}
		value, err := c.tokenValue(tok)
		if err != nil {
			return nil, err
		}
		if c.opts.OnToken != nil {
			if err := c.opts.OnToken(ctx, tok); err != nil {
				return nil, fmt.Errorf("reauth: OAuth2Options.OnToken: %w", err)
			}
		}
		return &cachedToken{value: value, refreshAt: c.refreshAt(tok), tok: tok}, nil
	}
}

func (c *oauth2Credentials) fresh(ct *cachedToken) bool {
	return ct.refreshAt.IsZero() || c.now().Before(ct.refreshAt)
}

// refreshAt returns when tok should be replaced: Skew before its expiry, or
// half-way through its life when that is shorter, so that a short-lived
// token is not fetched anew for every request.
func (c *oauth2Credentials) refreshAt(tok *oauth2.Token) time.Time {
	now := c.now()
	exp := tok.Expiry
	if exp.IsZero() && tok.ExpiresIn > 0 {
		exp = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if exp.IsZero() {
		exp = jwtExpiry(tok.AccessToken)
	}
	if exp.IsZero() {
		return time.Time{}
	}
	skew := min(c.skew, exp.Sub(now)/2)
	return exp.Add(-max(skew, 0))
}

// bearerValue returns the Authorization field value for tok, or why it
// cannot be sent as a Bearer token.
func bearerValue(tok *oauth2.Token) (string, error) {
	switch {
	case tok == nil:
		return "", unusableToken("reauth: the token source returned no token")
	case tok.TokenType != "" && !equalFoldASCII(tok.TokenType, "Bearer"):
		// RFC 6749 §7.1: the client must understand the token type. A DPoP
		// (RFC 9449) or MAC token sent as Bearer would be refused, or worse,
		// accepted without the proof of possession it was issued for.
		kind := "an unknown type"
		if isToken(tok.TokenType) && len(tok.TokenType) <= 32 {
			kind = fmt.Sprintf("type %q", tok.TokenType)
		}
		return "", unusableToken("reauth: the token endpoint issued a token of %s; reauth sends only Bearer tokens (RFC 6750)", kind)
	case tok.AccessToken == "":
		return "", unusableToken("reauth: the token endpoint issued no access token")
	case len(tok.AccessToken) > maxAccessToken:
		return "", unusableToken("reauth: the token endpoint issued an access token of %d bytes, over reauth's limit of %d", len(tok.AccessToken), maxAccessToken)
	case !isVisibleASCII(tok.AccessToken):
		// Not a b64token (RFC 6750 §2.1) nor anything a header can carry:
		// spaces, CR or LF would let the endpoint write header fields.
		return "", unusableToken("reauth: the token endpoint issued an access token with a space, control character or non-ASCII byte; a Bearer token is a b64token (RFC 6750 §2.1)")
	}
	return "Bearer " + tok.AccessToken, nil
}

// isVisibleASCII reports whether s is made of VCHARs (RFC 5234 B.1). Real
// tokens stray outside b64token now and then; anything visible is safe in a
// header, so only those are refused.
func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// bearerChallenge returns the Bearer challenge that says what went wrong.
func bearerChallenge(chs []Challenge) (Challenge, bool) { return erringChallenge(chs, "Bearer") }

// erringChallenge returns the challenge of scheme that says what went
// wrong (RFC 6750 §3, reused by RFC 9449 §7.1): the first one with an error
// code, else the first one.
func erringChallenge(chs []Challenge, scheme string) (Challenge, bool) {
	var first Challenge
	found := false
	for _, ch := range chs {
		if !ch.Is(scheme) {
			continue
		}
		if ch.Param("error") != "" {
			return ch, true
		}
		if !found {
			first, found = ch, true
		}
	}
	return first, found
}
