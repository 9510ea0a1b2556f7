package reauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The shared token store of OAuth2 credentials (OAuth2Options.Store): the
// in-process cache stays in front of it, and the store is asked only when
// that cache has no usable token (see DESIGN.md, Shared token store).
const (
	// storeCallTimeout bounds each call of the store: a store slower than
	// this counts as down, and the credentials go on with their own cache.
	storeCallTimeout = 2 * time.Second
	// storePollFirst and storePollMax are the backoff of a process that
	// waits for the lease holder's token: it polls Load from every 10 ms,
	// doubling, up to every 250 ms.
	storePollFirst = 10 * time.Millisecond
	storePollMax   = 250 * time.Millisecond
	// defaultStoredLifetime is the expiry written to the store for a token
	// the endpoint gave without expires_in that is not a JWT with exp: a
	// shared entry must end some time, or a fleet would keep a token no
	// process can tell is stale.
	defaultStoredLifetime = time.Hour
	// coolDownAfter5xx consecutive 5xx answers from the token endpoint put
	// it in a cool-down of coolDown5xx; a Retry-After is capped at
	// maxCoolDown.
	coolDownAfter5xx = 3
	coolDown5xx      = 30 * time.Second
	maxCoolDown      = 10 * time.Minute
)

// leaseTTL is how long a lease on the store lasts: the holder's fetch is
// bounded by FetchTimeout, plus its store calls. A holder that dies loses
// the lease then, and a waiter takes over.
func (c *oauth2Credentials) leaseTTL() time.Duration {
	return c.fetchTimeout + 2*storeCallTimeout
}

// flightTimeout bounds a refresh flight: with a store, the wait for the
// lease holder (at most one lease), then a fetch of its own.
func (c *oauth2Credentials) flightTimeout() time.Duration {
	if c.opts.Store == nil {
		return c.fetchTimeout
	}
	return c.leaseTTL() + c.fetchTimeout + 4*storeCallTimeout
}

// fetchOwn fetches from the source, bounded by FetchTimeout as every fetch
// is: the flight's own context lasts longer with a store (flightTimeout), for
// the wait on another holder's lease.
func (c *oauth2Credentials) fetchOwn(ctx context.Context) (*cachedToken, error) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout)
	defer cancel()
	return c.source(ctx)
}

// refreshFetch is the fetch of a refresh flight: fail fast in a cool-down,
// else through the store when there is one, else from the source.
func (c *oauth2Credentials) refreshFetch(report func(context.Context, Event), old *cachedToken, drop bool) fetchFunc {
	return func(ctx context.Context) (*cachedToken, error) {
		if until := c.coolingDown(ctx, report); !until.IsZero() {
			return nil, &TokenError{Err: &CoolDownError{Until: until}}
		}
		var ct *cachedToken
		var err error
		if c.opts.Store == nil {
			ct, err = c.source(ctx)
		} else {
			ct, err = c.fetchShared(ctx, report, old, drop)
		}
		c.afterFetch(ctx, report, err)
		return ct, err
	}
}

// coolingDown returns the end of a cool-down in force, zero if none: this
// process's own, else the store's.
func (c *oauth2Credentials) coolingDown(ctx context.Context, report func(context.Context, Event)) time.Time {
	now := c.now()
	c.mu.Lock()
	until := c.coolUntil
	c.mu.Unlock()
	if now.Before(until) {
		return until
	}
	s := c.opts.Store
	if s == nil {
		return time.Time{}
	}
	sctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	defer cancel()
	until, err := s.CoolDown(sctx, c.storeKey)
	if err != nil {
		c.storeFault(ctx, report, "reading the cool-down", err)
		return time.Time{}
	}
	if now.Before(until) {
		c.mu.Lock()
		c.coolUntil = until
		c.mu.Unlock()
		return until
	}
	return time.Time{}
}

// noteEndpointError counts what the token endpoint answered: a 429 or 503
// with Retry-After, or the coolDownAfter5xx-th 5xx in a row, starts a
// cool-down (RFC 9110 §10.2.3, RFC 6585 §4).
func (c *oauth2Credentials) noteEndpointError(err error) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return
	}
	status := re.Response.StatusCode
	now := c.now()
	var until time.Time
	c.mu.Lock()
	defer c.mu.Unlock()
	if status >= 500 {
		c.fails5xx++
		if c.fails5xx >= coolDownAfter5xx {
			until = now.Add(coolDown5xx)
		}
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, ok := retryAfter(re.Response.Header.Get("Retry-After"), now); ok {
			until = now.Add(d)
		}
	}
	if until.After(c.coolUntil) {
		c.coolUntil = until
		c.coolShare = true
	}
}

// retryAfter reads a Retry-After field (RFC 9110 §10.2.3): seconds or an
// HTTP-date, capped at maxCoolDown.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxCoolDown), true
}

// afterFetch resets the 5xx count after a success, and shares a cool-down
// the fetch started with the fleet.
func (c *oauth2Credentials) afterFetch(ctx context.Context, report func(context.Context, Event), err error) {
	c.mu.Lock()
	if err == nil {
		c.fails5xx = 0
	}
	share, until := c.coolShare, c.coolUntil
	c.coolShare = false
	c.mu.Unlock()
	if !share || c.opts.Store == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
	defer cancel()
	if err := c.opts.Store.SetCoolDown(sctx, c.storeKey, until); err != nil {
		c.storeFault(ctx, report, "storing the cool-down", err)
	}
}

// fetchShared obtains a token through the store: a usable stored token, or
// one fetched under the store's lease, so that one process in the fleet
// fetches while the others wait for what it stores (bounded by the lease:
// a dead holder's lease ends at leaseTTL, and a waiter takes over). The
// fetch refreshes with the stored refresh token, and stores what the
// endpoint answers, rotated refresh token included, by CompareAndSwap from
// the version loaded. Any store failure: the token comes from the source
// for this process alone, with an EventStoreFault.
func (c *oauth2Credentials) fetchShared(ctx context.Context, report func(context.Context, Event), refused *cachedToken, drop bool) (*cachedToken, error) {
	s := c.opts.Store
	if drop && refused != nil && refused.stored != nil {
		// Compare-and-invalidate across processes: only if the store still
		// holds the very token refused.
		sctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
		_, err := InvalidateStoredToken(sctx, s, c.storeKey, *refused.stored)
		cancel()
		if err != nil {
			c.storeFault(ctx, report, "invalidating the refused token", err)
			return c.fetchOwn(ctx)
		}
	}
	entry, ok, err := c.loadStored(ctx, report, refused)
	switch {
	case err != nil:
		return c.fetchOwn(ctx)
	case ok:
		return c.adopt(ctx, entry)
	}
	holder := c.holder
	wait := storePollFirst
	for {
		sctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
		got, err := s.AcquireLease(sctx, c.storeKey, holder, c.leaseTTL())
		cancel()
		if err != nil {
			c.storeFault(ctx, report, "acquiring the lease", err)
			return c.fetchOwn(ctx)
		}
		if got {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &TokenError{Err: ctx.Err()}
		case <-t.C:
		}
		wait = min(2*wait, storePollMax)
		if entry, ok, err = c.loadStored(ctx, report, refused); err != nil {
			return c.fetchOwn(ctx)
		} else if ok {
			return c.adopt(ctx, entry)
		}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
		defer cancel()
		if err := s.ReleaseLease(sctx, c.storeKey, holder); err != nil {
			c.storeFault(ctx, report, "releasing the lease", err)
		}
	}()
	// Another holder may have stored a token between the last Load and the
	// lease.
	if entry, ok, err = c.loadStored(ctx, report, refused); err != nil {
		return c.fetchOwn(ctx)
	} else if ok {
		return c.adopt(ctx, entry)
	}
	if c.refresher != nil && entry.RefreshToken != "" {
		c.refresher.setRefreshToken(entry.RefreshToken)
	}
	ct, err := c.fetchOwn(ctx)
	if err != nil {
		return nil, err
	}
	next := c.storedOf(ct)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
	version, swapped, err := s.CompareAndSwap(sctx, c.storeKey, entry.Version, next)
	cancel()
	switch {
	case err != nil:
		c.storeFault(ctx, report, "storing the token", err)
		return ct, nil
	case !swapped:
		// A holder that took over stored first: use its token and its
		// refresh token, never present ours again.
		if newer, ok, err := c.loadStored(ctx, report, nil); err == nil && ok {
			return c.adopt(ctx, newer)
		}
		return ct, nil
	}
	next.Version = version
	ct.stored = &next
	return ct, nil
}

// loadStored loads the stored entry and reports whether it holds a token to
// use: one with an access token this process can send, other than the one
// replaced (refused or due), and good for at least min(Skew, 1 s) more. A corrupt or foreign entry is
// reported and treated as absent (its version is kept, so that it is
// replaced by CompareAndSwap). err is set when the store failed.
func (c *oauth2Credentials) loadStored(ctx context.Context, report func(context.Context, Event), refused *cachedToken) (StoredToken, bool, error) {
	sctx, cancel := context.WithTimeout(ctx, storeCallTimeout)
	entry, err := c.opts.Store.Load(sctx, c.storeKey)
	cancel()
	switch {
	case errors.Is(err, ErrStoreMiss):
		return StoredToken{}, false, nil
	case errors.Is(err, ErrStoreEntryInvalid) || errors.Is(err, ErrStoreWrongKey):
		c.storeFault(ctx, report, "ignoring the stored entry", err)
		return StoredToken{Version: entry.Version}, false, nil
	case err != nil:
		c.storeFault(ctx, report, "loading the token", err)
		return StoredToken{}, false, err
	}
	if entry.Invalidated() || entry.DPoPJKT != c.identity.DPoPThumbprint {
		return entry, false, nil
	}
	value, err := c.tokenValue(&oauth2.Token{AccessToken: entry.AccessToken, TokenType: entry.TokenType})
	if err != nil {
		c.storeFault(ctx, report, "ignoring the stored entry", fmt.Errorf("%w: %s", ErrStoreEntryInvalid, reasonText(err)))
		return entry, false, nil
	}
	if refused != nil && refused.value == value {
		return entry, false, nil
	}
	if !entry.Expiry.IsZero() && !c.now().Add(min(c.skew, time.Second)).Before(entry.Expiry) {
		return entry, false, nil
	}
	return entry, true, nil
}

// adopt makes a stored entry this process's token. A refresh token another
// process rotated becomes this one's, and is handed to OnToken.
func (c *oauth2Credentials) adopt(ctx context.Context, entry StoredToken) (*cachedToken, error) {
	tok := &oauth2.Token{AccessToken: entry.AccessToken, TokenType: entry.TokenType, Expiry: entry.Expiry, RefreshToken: entry.RefreshToken}
	value, err := c.tokenValue(tok)
	if err != nil {
		return nil, err
	}
	if c.refresher != nil && entry.RefreshToken != "" && c.refresher.setRefreshToken(entry.RefreshToken) && c.opts.OnToken != nil {
		if err := c.opts.OnToken(ctx, tok); err != nil {
			return nil, fmt.Errorf("reauth: OAuth2Options.OnToken: %w", err)
		}
	}
	return &cachedToken{value: value, refreshAt: c.refreshAt(tok), stored: &entry}, nil
}

// storedOf is the entry to store for a token fetched from the source.
func (c *oauth2Credentials) storedOf(ct *cachedToken) StoredToken {
	t := StoredToken{DPoPJKT: c.identity.DPoPThumbprint}
	if tok := ct.tok; tok != nil {
		t.AccessToken, t.TokenType, t.Expiry, t.RefreshToken = tok.AccessToken, tok.TokenType, tok.Expiry, tok.RefreshToken
		if t.Expiry.IsZero() && tok.ExpiresIn > 0 {
			t.Expiry = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
		}
		if t.Expiry.IsZero() {
			t.Expiry = jwtExpiry(tok.AccessToken)
		}
		if t.Expiry.IsZero() {
			t.Expiry = c.now().Add(defaultStoredLifetime)
		}
		if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
			t.Scopes = strings.Fields(sc)
		}
	}
	if t.RefreshToken == "" && c.refresher != nil {
		t.RefreshToken = c.refresher.current()
	}
	return t
}

// storeFault reports a failure of the store (or an entry it held that
// cannot be used) as an EventStoreFault and a warning in the Transport's
// log: the credentials go on with their own cache. Store errors name no
// token.
func (c *oauth2Credentials) storeFault(ctx context.Context, report func(context.Context, Event), what string, err error) {
	report(ctx, Event{Kind: EventStoreFault, Err: fmt.Errorf("reauth: token store: %s: %s", what, reasonText(err))})
}

// jwtExpiry returns the exp claim of a JWT access token, zero if tok is not
// a JWT with one. The payload is only parsed, not verified: the token is the
// resource server's to check, and exp serves only to replace it in time
// when the endpoint sent no expires_in.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > 8<<10 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// tokenIdentity is the identity of the tokens of a grant, for StoreKey.
func tokenIdentity(tokenURL, clientID string, scopes []string, audience string, opts OAuth2Options) TokenIdentity {
	id := TokenIdentity{TokenURL: tokenURL, ClientID: clientID, Scopes: scopes, Audience: audience}
	// A DPoP-bound token is usable only with its key (RFC 9449 §6): the
	// key's thumbprint is part of the token's identity. A key DPoPProof
	// cannot use fails every request anyway, with an error that says so.
	if opts.DPoP != nil {
		if jkt, err := JWKThumbprint(opts.DPoP.Public()); err == nil {
			id.DPoPThumbprint = jkt
		}
	}
	return id
}

func (r *refresher) setRefreshToken(rt string) (changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed = r.refreshToken != rt
	r.refreshToken = rt
	return changed
}

func (r *refresher) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshToken
}
