package reauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Keychain finds the credentials for an origin among those a user already
// keeps: a .netrc file ([NetrcKeychain]), the go command's GOAUTH helpers
// ([GOAUTHKeychain]), Docker's config.json and credential helpers
// ([DockerKeychain]). Credentials a Keychain resolves for an origin are bound
// to that origin only. Implementations must be safe for concurrent use.
type Keychain interface {
	// Resolve returns the credentials for origin ("scheme://host[:port]"),
	// or nil for none. Having nothing for an origin is not an error: the
	// request goes without credentials.
	Resolve(ctx context.Context, origin string) (Credentials, error)
}

// Keychains returns a Keychain that asks each of k in turn and returns the
// first credentials one resolves. An error from one of them ends the search:
// it is returned naming that keychain, for a broken file or helper should be
// fixed rather than passed over. Nil entries are skipped.
func Keychains(k ...Keychain) Keychain {
	return keychains(append([]Keychain(nil), k...))
}

type keychains []Keychain

func (ks keychains) Resolve(ctx context.Context, origin string) (Credentials, error) {
	for i, k := range ks {
		if k == nil {
			continue
		}
		c, err := k.Resolve(ctx, origin)
		if err != nil {
			return nil, &keychainError{index: i, name: keychainName(k), err: err}
		}
		if c != nil {
			return c, nil
		}
	}
	return nil, nil
}

// keychainName names k in errors: its String method when it has one (the
// keychains of this package name their file), else its type.
func keychainName(k Keychain) string {
	if s, ok := k.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", k)
}

// keychainError says which of the [Keychains] failed.
type keychainError struct {
	index int
	name  string
	err   error
}

func (e *keychainError) Error() string {
	return fmt.Sprintf("reauth: Keychains[%d] (%s): %s", e.index, e.name, strings.TrimPrefix(e.err.Error(), "reauth: "))
}

func (e *keychainError) Unwrap() error { return e.err }

// parseKeychainOrigin checks that origin is "scheme://host[:port]" with an
// http or https scheme, as [Keychain.Resolve] is given it, and returns it
// parsed.
func parseKeychainOrigin(origin string) (*url.URL, error) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		// The text is not echoed: a mistaken origin may hold userinfo.
		return nil, errors.New("reauth: keychain origin is not scheme://host[:port] with scheme http or https")
	}
	return u, nil
}

// maxCachedOrigins bounds the origins an originCache keeps resolutions for:
// a client that talks to many hosts (redirects, a crawler) must not make the
// cache grow without end.
const maxCachedOrigins = 256

// originCache keeps what a Keychain resolved per origin, so that a helper
// runs once per origin rather than once per request. Concurrent requests to
// one origin share one resolution. Errors are not kept: the next request
// tries again. After a refusal, forget drops the resolution so that the next
// request resolves afresh (a helper may hold new credentials by then).
type originCache struct {
	kc  Keychain
	max int

	mu      sync.Mutex
	entries map[string]*originEntry
	order   []string // keys, oldest first, for eviction
	nextID  uint64
}

type originEntry struct {
	done chan struct{} // closed when c and err are set
	id   uint64        // tells this resolution from later ones for forget
	c    Credentials
	err  error
}

func newOriginCache(kc Keychain, max int) *originCache {
	if max <= 0 {
		max = maxCachedOrigins
	}
	return &originCache{kc: kc, max: max, entries: make(map[string]*originEntry)}
}

// get returns the credentials for origin, resolving them on first use, and
// the id of that resolution for forget.
func (oc *originCache) get(ctx context.Context, origin string) (Credentials, uint64, error) {
	oc.mu.Lock()
	e, ok := oc.entries[origin]
	if !ok {
		oc.nextID++
		e = &originEntry{done: make(chan struct{}), id: oc.nextID}
		oc.insert(origin, e)
		oc.mu.Unlock()
		e.c, e.err = oc.kc.Resolve(ctx, origin)
		oc.mu.Lock()
		if e.err != nil && oc.entries[origin] == e {
			oc.remove(origin)
		}
		oc.mu.Unlock()
		close(e.done)
		return e.c, e.id, e.err
	}
	oc.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if e.err != nil {
		// The resolving request failed (its context ended, say): this one
		// resolves for itself.
		return oc.get(ctx, origin)
	}
	return e.c, e.id, nil
}

// forget drops resolution id of origin (as get returned it): a refusal of
// its credentials makes the next request resolve again, while a resolution
// made since (by a concurrent request) is kept.
func (oc *originCache) forget(origin string, id uint64) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if e, ok := oc.entries[origin]; ok && e.id == id {
		oc.remove(origin)
	}
}

func (oc *originCache) insert(origin string, e *originEntry) {
	for len(oc.order) >= oc.max {
		oc.remove(oc.order[0])
	}
	oc.entries[origin] = e
	oc.order = append(oc.order, origin)
}

func (oc *originCache) remove(origin string) {
	delete(oc.entries, origin)
	for i, k := range oc.order {
		if k == origin {
			oc.order = append(oc.order[:i], oc.order[i+1:]...)
			break
		}
	}
}

// keychainBinding is what a Transport's Keychain resolved for the origin of
// one request: the credentials, bound to that origin alone.
type keychainBinding struct {
	c      Credentials
	origin origin
	key    string // the origin as Resolve was given it
	id     uint64 // the resolution, for forget
	cache  *originCache
}

// bind resolves the credentials for req's origin; nil when the keychain has
// none, or req's URL is not an http(s) origin.
func (oc *originCache) bind(req *http.Request) (*keychainBinding, error) {
	u := req.URL
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil
	}
	key := canonicalOrigin(u)
	c, id, err := oc.get(req.Context(), key)
	if err != nil {
		return nil, &KeychainError{Origin: key, Err: err}
	}
	if c == nil {
		return nil, nil
	}
	return &keychainBinding{c: c, origin: originOf(u), key: key, id: id, cache: oc}, nil
}

// forget makes the next request to the origin resolve again.
func (b *keychainBinding) forget() { b.cache.forget(b.key, b.id) }

// KeychainError is a Transport.Keychain that failed to resolve the
// credentials of a request's origin (a broken file, a helper that failed):
// the request is not sent. Err says what failed, never a secret.
type KeychainError struct {
	Origin string // "scheme://host:port"
	Err    error  // what failed
}

// Error names the origin and what failed.
func (e *KeychainError) Error() string {
	return fmt.Sprintf("reauth: Transport.Keychain for %s: %s", e.Origin, strings.TrimPrefix(e.Err.Error(), "reauth: "))
}

// Unwrap returns Err.
func (e *KeychainError) Unwrap() error { return e.Err }
