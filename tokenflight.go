package reauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// tokenFlight is one token fetch shared by every request that needs a new
// token while it runs (DESIGN.md, invariant 6: one fetch per refused token, for
// any number of goroutines). Each waiter waits on its own context and leaves
// when that ends, so a cancelled request returns at once.
//
// There are two kinds, never joined with each other: a refresh from the
// token source, and a call of the StepUp hook. A request whose token is only
// due for replacement must not wait for a user's login, and a step-up
// challenge must not be answered with a plain token.
//
// A refresh runs to completion on a context of its own, whoever still waits:
// once the token request is sent, the endpoint may have rotated the refresh
// token, and dropping its answer would leave only the retired one. That
// context keeps the values of the request that started the fetch (x/oauth2
// reads its HTTP client there) and ends after OAuth2Options.FetchTimeout. A
// step-up call is cancelled when its last waiter leaves: the user's login is
// wanted only while a request waits for it.
type tokenFlight struct {
	done chan struct{}
	// started is when the flight began, by the credentials' clock: a
	// refresh older than FetchTimeout is not joined any more.
	started time.Time
	// seq orders flights by their start. A refresh caches its token only if
	// no flight that began after it has cached one.
	seq uint64

	cancel  context.CancelFunc // step-up: ends the hook's context; nil for a refresh
	waiters int                // step-up: requests waiting; guarded by oauth2Credentials.mu

	// Set before done is closed.
	value string
	err   error
}

// fetchFunc obtains a token: from the source, or from the StepUp hook.
type fetchFunc func(ctx context.Context) (*cachedToken, error)

// refreshLocked returns the refresh in progress, or starts one. A refresh
// older than FetchTimeout (with a Store: its flightTimeout, so that one
// process never has two flights under one lease holder) is left to finish on
// its own (a plain oauth2.TokenSource cannot be stopped) and a new one
// started. c.mu must be held.
func (c *oauth2Credentials) refreshLocked(r *AuthRequest) *tokenFlight {
	if fl := c.refreshing; fl != nil && c.now().Sub(fl.started) < c.flightTimeout() {
		return fl
	}
	ctx, cancel := context.WithTimeout(c.fetchContext(r), c.flightTimeout())
	report := r.Reporter()
	// The token replaced: the one refused (to invalidate in the store),
	// else the one due; a stored entry holding it is not taken again.
	old, drop := c.invalidate, true
	c.invalidate = nil
	if old == nil {
		old, drop = c.cur.Load(), false
	}
	c.refreshing = c.startLocked(ctx, cancel, c.refreshFetch(report, old, drop), false)
	return c.refreshing
}

// refreshAhead starts a refresh in the background for ct, whose aheadAt has
// come, unless one was started for it already: the requests go on with ct
// meanwhile, so none waits on a refresh while ct is still good. A refresh
// that fails leaves ct until its refreshAt, when requests wait for a fetch.
func (c *oauth2Credentials) refreshAhead(r *AuthRequest, ct *cachedToken) {
	if !ct.aheadTried.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.cur.Load() == ct {
		c.refreshLocked(r)
	}
	c.mu.Unlock()
}

// aheadOf returns when a background refresh of a token due at refreshAt
// starts: Skew before refreshAt, or half-way from now when that is sooner.
func (c *oauth2Credentials) aheadOf(refreshAt time.Time) time.Time {
	if refreshAt.IsZero() || c.skew <= 0 {
		return time.Time{}
	}
	return refreshAt.Add(-min(c.skew, refreshAt.Sub(c.now())/2))
}

// setIdentity sets the identity of the credentials' tokens, and with a
// Store the key and lease holder id they use there.
func (c *oauth2Credentials) setIdentity(id TokenIdentity) {
	c.identity = id
	if c.opts.Store != nil {
		c.storeKey = StoreKey(id)
		c.holder = NewLeaseHolder()
	}
}

// audienceOf is the audience (or RFC 8707 resource) a token request asks
// for, part of the token's identity.
func audienceOf(params url.Values) string {
	if a := params["audience"]; len(a) > 0 {
		return strings.Join(a, " ")
	}
	return strings.Join(params["resource"], " ")
}

// stepUpLocked returns the step-up in progress, or starts one with fetch,
// and counts the caller as one of its waiters. c.mu must be held.
func (c *oauth2Credentials) stepUpLocked(r *AuthRequest, fetch fetchFunc) *tokenFlight {
	fl := c.steppingUp
	if fl == nil {
		ctx, cancel := context.WithCancel(c.fetchContext(r))
		fl = c.startLocked(ctx, cancel, fetch, true)
		c.steppingUp = fl
	}
	fl.waiters++
	return fl
}

// fetchContext is the context of a fetch started for r: r's values without
// its cancellation, and the HTTP client for token requests as x/oauth2
// reads it.
func (c *oauth2Credentials) fetchContext(r *AuthRequest) context.Context {
	return context.WithValue(context.WithoutCancel(r.Context()), oauth2.HTTPClient, c.tokenClient(r))
}

// tokenClient is the client of token requests: OAuth2Options.HTTPClient, or
// one over the Transport's Base. Never http.DefaultClient, which may be a
// reauth Transport bound to the token endpoint: the token request would
// wait for the token it is fetching.
func (c *oauth2Credentials) tokenClient(r *AuthRequest) *http.Client {
	if c.opts.HTTPClient != nil {
		return c.signed(c.opts.HTTPClient)
	}
	base := r.Base()
	if base == nil {
		base = http.DefaultTransport
	}
	return c.signed(&http.Client{Transport: base})
}

// startLocked starts a flight running fetch on ctx, which cancel releases.
// A step-up's token is always cached, and outranks every flight running
// then: it answers what a plain token cannot. A refresh's token is cached
// unless a flight that began later has cached one, which is at least as new.
// c.mu must be held.
func (c *oauth2Credentials) startLocked(ctx context.Context, cancel context.CancelFunc, fetch fetchFunc, stepUp bool) *tokenFlight {
	c.flights++
	fl := &tokenFlight{done: make(chan struct{}), started: c.now(), seq: c.flights}
	if stepUp {
		fl.cancel = cancel
	}
	go func() {
		defer cancel()
		ct, err := fetch(ctx)
		c.mu.Lock()
		switch {
		case err != nil:
		case stepUp:
			c.cur.Store(ct)
			c.cachedSeq = c.flights
		case fl.seq > c.cachedSeq:
			ct.aheadAt = c.aheadOf(ct.refreshAt)
			c.cur.Store(ct)
			c.cachedSeq = fl.seq
		}
		if c.refreshing == fl {
			c.refreshing = nil
		}
		if c.steppingUp == fl {
			c.steppingUp = nil
		}
		c.mu.Unlock()
		if err == nil {
			fl.value = ct.value
		}
		fl.err = err
		close(fl.done)
	}()
	return fl
}

// wait waits for fl or for ctx, whichever ends first. A step-up left by its
// last waiter is cancelled, and the next challenge starts afresh.
func (c *oauth2Credentials) wait(ctx context.Context, fl *tokenFlight) (string, error) {
	select {
	case <-fl.done:
		return fl.value, fl.err
	case <-ctx.Done():
	}
	if fl.cancel != nil {
		c.mu.Lock()
		fl.waiters--
		if fl.waiters == 0 && c.steppingUp == fl {
			c.steppingUp = nil
			fl.cancel()
		}
		c.mu.Unlock()
	}
	return "", &TokenError{Err: ctx.Err()}
}
