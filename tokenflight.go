package reauth

import (
	"context"
)

// tokenFlight is one token fetch shared by every request that needs a new
// token while it runs (DESIGN.md, invariant 6: one fetch per refused token, for
// any number of goroutines).
//
// Each waiter waits on its own context and leaves when that ends, so a
// cancelled request returns at once. The fetch runs on a context of its
// own, detached from the first waiter's cancellation: one request giving up
// must not fail the others. When the last waiter leaves, a fetch that honours
// its context is cancelled; one that cannot (a plain oauth2.TokenSource) is
// left to finish, and its token is kept for the requests that come next.
type tokenFlight struct {
	done    chan struct{}
	cancel  context.CancelFunc // nil when the fetch does not honour its context
	waiters int                // guarded by oauth2Credentials.mu

	// Set before done is closed.
	value string
	err   error
}

// fetcher is one way of obtaining a token: from the source, or from the
// step-up hook.
type fetcher struct {
	fetch func(context.Context) (value string, ct *cachedToken, err error)
	// cancelable says fetch honours its context, so an abandoned fetch may
	// be stopped.
	cancelable bool
}

// startLocked starts a flight running f. c.mu must be held.
func (c *oauth2Credentials) startLocked(ctx context.Context, f fetcher) *tokenFlight {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fl := &tokenFlight{done: make(chan struct{})}
	if f.cancelable {
		fl.cancel = cancel
	}
	c.flight = fl
	go func() {
		defer cancel()
		value, ct, err := f.fetch(fctx)
		c.mu.Lock()
		if err == nil {
			c.cur.Store(ct)
		}
		if c.flight == fl {
			c.flight = nil
		}
		c.mu.Unlock()
		fl.value, fl.err = value, err
		close(fl.done)
	}()
	return fl
}

// wait waits for fl or for ctx, whichever ends first. The caller has counted
// itself in fl.waiters.
func (c *oauth2Credentials) wait(ctx context.Context, fl *tokenFlight) (string, error) {
	select {
	case <-fl.done:
		return fl.value, fl.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	fl.waiters--
	if fl.waiters == 0 && fl.cancel != nil && c.flight == fl {
		// Nobody wants this fetch any more; the next request starts afresh.
		c.flight = nil
		fl.cancel()
	}
	c.mu.Unlock()
	return "", &TokenError{Err: ctx.Err()}
}
