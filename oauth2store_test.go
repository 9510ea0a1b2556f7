package reauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// storeIdP is a token endpoint and a resource for the shared store tests:
// it issues tok-1, tok-2, … and, for the refresh grant, rotates refresh
// tokens and refuses one presented twice.
type storeIdP struct {
	srv       *httptest.Server
	fetches   atomic.Int64
	mu        sync.Mutex
	valid     map[string]bool
	spent     map[string]bool
	refresh   string // the refresh token that is good now
	status    int    // when non-zero, the token endpoint answers it
	retry     string // its Retry-After
	expiresIn int
	token     func(n int64) string // nil: tok-n
}

func newStoreIdP(t *testing.T) *storeIdP {
	p := &storeIdP{valid: map[string]bool{}, spent: map[string]bool{}, refresh: "rt-0", expiresIn: 3600}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch r.URL.Path {
		case "/token":
			p.fetches.Add(1)
			if p.status != 0 {
				if p.retry != "" {
					w.Header().Set("Retry-After", p.retry)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(p.status)
				_, _ = io.WriteString(w, `{"error":"temporarily_unavailable"}`)
				return
			}
			_ = r.ParseForm()
			rt := ""
			if r.PostForm.Get("grant_type") == "refresh_token" {
				got := r.PostForm.Get("refresh_token")
				if got != p.refresh || p.spent[got] {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
					return
				}
				p.spent[got] = true
				p.refresh = fmt.Sprintf("rt-%d", p.fetches.Load())
				rt = fmt.Sprintf(`,"refresh_token":%q`, p.refresh)
			}
			tok := fmt.Sprintf("tok-%d", p.fetches.Load())
			if p.token != nil {
				tok = p.token(p.fetches.Load())
			}
			p.valid[tok] = true
			exp := ""
			if p.expiresIn > 0 {
				exp = fmt.Sprintf(`,"expires_in":%d`, p.expiresIn)
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"%s%s}`, tok, exp, rt)
		default:
			h := r.Header.Get("Authorization")
			if len(h) > 7 && p.valid[h[7:]] {
				_, _ = io.WriteString(w, h[7:])
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *storeIdP) revoke(tok string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.valid, tok)
}

func (p *storeIdP) set(f func(p *storeIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// storeMember is one "process": credentials of its own over the shared
// store, and a client through a Transport.
type storeMember struct {
	client *http.Client
	events chan Event
}

func newStoreMember(t *testing.T, p *storeIdP, store TokenStore, clock *fakeClock, refresh bool) *storeMember {
	opts := OAuth2Options{Store: store, Now: clock.Now, HTTPClient: p.srv.Client()}
	var creds Credentials
	if refresh {
		cfg := &oauth2.Config{ClientID: "c", ClientSecret: "s", Endpoint: oauth2.Endpoint{TokenURL: p.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		creds = RefreshToken(cfg, &oauth2.Token{RefreshToken: "rt-0"}, opts)
	} else {
		cfg := &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: p.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
		creds = ClientCredentials(cfg, opts)
	}
	m := &storeMember{events: make(chan Event, 64)}
	m.client = &http.Client{Transport: &Transport{
		Credentials: creds, Origins: []string{p.srv.URL},
		OnEvent: func(e Event) {
			if e.Kind == EventStoreFault {
				select {
				case m.events <- e:
				default:
				}
			}
		},
	}}
	return m
}

// get returns the token the resource saw, or the error.
func (m *storeMember) get(t *testing.T, p *storeIdP) (string, error) {
	t.Helper()
	resp, err := m.client.Get(p.srv.URL + "/resource")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}

func newTestFileStore(t *testing.T, clock *fakeClock) *FileStore {
	s, err := NewFileStore(filepath.Join(t.TempDir(), "tokens"))
	require.NoError(t, err)
	s.Now = clock.Now
	return s
}

func TestStoreSharesOneFetchAcrossMembers(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	a, b := newStoreMember(t, p, store, clock, false), newStoreMember(t, p, store, clock, false)
	ta, err := a.get(t, p)
	require.NoError(t, err)
	tb, err := b.get(t, p)
	require.NoError(t, err)
	assert.Equal(t, ta, tb, "b takes a's stored token")
	assert.EqualValues(t, 1, p.fetches.Load())
}

func TestStoreRevocationFetchesOnceAndLateRefusalKeepsNewerToken(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	a, b := newStoreMember(t, p, store, clock, false), newStoreMember(t, p, store, clock, false)
	t1, err := a.get(t, p)
	require.NoError(t, err)
	_, err = b.get(t, p)
	require.NoError(t, err)
	p.revoke(t1)
	t2, err := a.get(t, p) // a's 401 invalidates t1 in the store and fetches t2
	require.NoError(t, err)
	assert.NotEqual(t, t1, t2)
	// b's late 401 for t1 must not throw t2 away: b takes t2, no fetch.
	tb, err := b.get(t, p)
	require.NoError(t, err)
	assert.Equal(t, t2, tb)
	assert.EqualValues(t, 2, p.fetches.Load())
	st, err := store.Load(context.Background(), StoreKey(TokenIdentity{TokenURL: p.srv.URL + "/token", ClientID: "c"}))
	require.NoError(t, err)
	assert.True(t, st.AccessToken == t2, "the store still holds the newer token")
}

func TestStoreRotatedRefreshTokenSeenByAll(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	a, b := newStoreMember(t, p, store, clock, true), newStoreMember(t, p, store, clock, true)
	t1, err := a.get(t, p) // spends rt-0, stores rt-1
	require.NoError(t, err)
	_, err = b.get(t, p)
	require.NoError(t, err)
	p.revoke(t1)
	_, err = b.get(t, p) // b refreshes with rt-1 from the store, not its own rt-0
	require.NoError(t, err, "b must not present the spent rt-0")
	_, err = a.get(t, p) // a takes b's token
	require.NoError(t, err)
	assert.EqualValues(t, 2, p.fetches.Load())
}

func TestStoreCoolDownFailsFastForTheFleet(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	p.set(func(p *storeIdP) { p.status, p.retry = http.StatusTooManyRequests, "120" })
	a, b := newStoreMember(t, p, store, clock, false), newStoreMember(t, p, store, clock, false)
	_, err := a.get(t, p)
	require.Error(t, err)
	assert.EqualValues(t, 1, p.fetches.Load())
	_, err = b.get(t, p)
	var cd *CoolDownError
	require.ErrorAs(t, err, &cd, "b fails fast on the stored cool-down")
	assert.ErrorIs(t, err, ErrTokenEndpointCoolingDown)
	assert.NotErrorIs(t, err, ErrFinal, "NewClient may retry after the pause")
	assert.True(t, clock.Now().Add(120*time.Second).Equal(cd.Until), "until the Retry-After")
	assert.EqualValues(t, 1, p.fetches.Load(), "no token request during the cool-down")
	p.set(func(p *storeIdP) { p.status, p.retry = 0, "" })
	clock.Advance(121 * time.Second)
	_, err = b.get(t, p)
	require.NoError(t, err)
}

func TestCoolDownWithoutStoreAfterRepeated5xx(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	p.set(func(p *storeIdP) { p.status = http.StatusBadGateway })
	a := newStoreMember(t, p, nil, clock, false)
	for range coolDownAfter5xx {
		_, err := a.get(t, p)
		require.Error(t, err)
	}
	_, err := a.get(t, p)
	assert.ErrorIs(t, err, ErrTokenEndpointCoolingDown)
	assert.EqualValues(t, coolDownAfter5xx, p.fetches.Load())
}

// failingStore fails every call, as a Redis that is down.
type failingStore struct{ calls atomic.Int64 }

var errStoreDown = errors.New("dial tcp 127.0.0.1:1: connection refused")

func (s *failingStore) Load(context.Context, string) (StoredToken, error) {
	s.calls.Add(1)
	return StoredToken{}, errStoreDown
}
func (s *failingStore) CompareAndSwap(context.Context, string, uint64, StoredToken) (uint64, bool, error) {
	s.calls.Add(1)
	return 0, false, errStoreDown
}
func (s *failingStore) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	s.calls.Add(1)
	return false, errStoreDown
}
func (s *failingStore) ReleaseLease(context.Context, string, string) error { return errStoreDown }
func (s *failingStore) CoolDown(context.Context, string) (time.Time, error) {
	return time.Time{}, errStoreDown
}
func (s *failingStore) SetCoolDown(context.Context, string, time.Time) error { return errStoreDown }

func TestStoreDownFallsBackToOwnCache(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := &failingStore{}
	a := newStoreMember(t, p, store, clock, false)
	for range 3 {
		_, err := a.get(t, p)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, p.fetches.Load(), "own cache in front")
	select {
	case e := <-a.events:
		assert.ErrorContains(t, e.Err, "token store")
		assert.NotContains(t, e.Err.Error(), "tok-")
	default:
		t.Fatal("no EventStoreFault")
	}
}

func TestStoreCorruptEntryIgnoredWithEvent(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	key := StoreKey(TokenIdentity{TokenURL: p.srv.URL + "/token", ClientID: "c"})
	// An entry written for another key is foreign.
	_, ok, err := store.CompareAndSwap(context.Background(), StoreKey(TokenIdentity{ClientID: "x"}), 0, StoredToken{AccessToken: "x"})
	require.NoError(t, err)
	require.True(t, ok)
	foreign, err := EncodeStoredToken("other", 7, StoredToken{AccessToken: "foreign"}, nil)
	require.NoError(t, err)
	name, err := store.file(key, ".token")
	require.NoError(t, err)
	require.NoError(t, store.writeFile(name, foreign))
	a := newStoreMember(t, p, store, clock, false)
	tok, err := a.get(t, p)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok)
	select {
	case e := <-a.events:
		assert.ErrorContains(t, e.Err, "corrupt or foreign")
	default:
		t.Fatal("no EventStoreFault for the foreign entry")
	}
	st, err := store.Load(context.Background(), key)
	require.NoError(t, err)
	assert.True(t, st.AccessToken == "tok-1", "the foreign entry was replaced")
}

func TestRefreshAheadServesOldTokenMeanwhile(t *testing.T) {
	t.Run("own cache", func(t *testing.T) { testRefreshAhead(t, false) })
	// The store still holds the token being replaced: it is not taken again.
	t.Run("store", func(t *testing.T) { testRefreshAhead(t, true) })
}

func testRefreshAhead(t *testing.T, withStore bool) {
	p, clock := newStoreIdP(t), newFakeClock()
	p.set(func(p *storeIdP) { p.expiresIn = 3600 })
	// x/oauth2 turns expires_in into an expiry by the real clock.
	clock.Set(time.Since(clock.start))
	var store TokenStore
	if withStore {
		store = newTestFileStore(t, clock)
	}
	a := newStoreMember(t, p, store, clock, false)
	t1, err := a.get(t, p)
	require.NoError(t, err)
	// refreshAt is 30 s before expiry, the background refresh 30 s before that.
	clock.Advance(3600*time.Second - 45*time.Second)
	got, err := a.get(t, p)
	require.NoError(t, err)
	assert.Equal(t, t1, got, "the old token is still good: no request waits")
	require.Eventually(t, func() bool { return p.fetches.Load() == 2 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		got, err := a.get(t, p)
		return err == nil && got == "tok-2"
	}, 10*time.Second, time.Millisecond)
	assert.EqualValues(t, 2, p.fetches.Load())
}

func TestJWTExpiryWhenExpiresInMissing(t *testing.T) {
	clock := newFakeClock()
	exp := clock.Now().Add(10 * time.Minute).Unix()
	jwt := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, exp))) + ".sig"
	assert.Equal(t, time.Unix(exp, 0), jwtExpiry(jwt))
	assert.True(t, jwtExpiry("opaque-token").IsZero())
	assert.True(t, jwtExpiry("a.!!!.c").IsZero())

	p := newStoreIdP(t)
	p.set(func(p *storeIdP) { p.expiresIn = 0; p.token = func(int64) string { return jwt } })
	store := newTestFileStore(t, clock)
	a := newStoreMember(t, p, store, clock, false)
	_, err := a.get(t, p)
	require.NoError(t, err)
	st, err := store.Load(context.Background(), StoreKey(TokenIdentity{TokenURL: p.srv.URL + "/token", ClientID: "c"}))
	require.NoError(t, err)
	assert.True(t, time.Unix(exp, 0).Equal(st.Expiry), "stored with the JWT's exp")
	clock.Advance(10*time.Minute - 10*time.Second) // past refreshAt (exp − 30 s)
	_, err = a.get(t, p)
	require.NoError(t, err)
	assert.EqualValues(t, 2, p.fetches.Load(), "replaced by the JWT's exp")
}

func TestOAuth2WithOptionsRefusesStore(t *testing.T) {
	creds := OAuth2WithOptions(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), OAuth2Options{Store: &failingStore{}})
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	ar := &AuthRequest{req: req}
	err := creds.Authorize(ar)
	assert.ErrorIs(t, err, ErrConfig)
}

func TestStoreWaiterTakesOverFromDeadHolder(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	key := StoreKey(TokenIdentity{TokenURL: p.srv.URL + "/token", ClientID: "c"})
	got, err := store.AcquireLease(context.Background(), key, "dead-holder", time.Minute)
	require.NoError(t, err)
	require.True(t, got)
	a := newStoreMember(t, p, store, clock, false)
	done := make(chan error, 1)
	go func() {
		_, err := a.get(t, p)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("did not wait for the lease holder: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	assert.Zero(t, p.fetches.Load(), "no fetch while another holds the lease")
	clock.Advance(2 * time.Minute) // the dead holder's lease ends
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("the waiter did not take over")
	}
	assert.EqualValues(t, 1, p.fetches.Load())
}

func TestStoreOnTokenSeesRotationByAnotherProcess(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	a := newStoreMember(t, p, store, clock, true)
	_, err := a.get(t, p) // a spends rt-0 and stores rt-1
	require.NoError(t, err)
	var seen []string
	cfg := &oauth2.Config{ClientID: "c", ClientSecret: "s", Endpoint: oauth2.Endpoint{TokenURL: p.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	creds := RefreshToken(cfg, &oauth2.Token{RefreshToken: "rt-0"}, OAuth2Options{
		Store: store, Now: clock.Now, HTTPClient: p.srv.Client(),
		OnToken: func(_ context.Context, tok *oauth2.Token) error {
			seen = append(seen, tok.RefreshToken)
			return nil
		},
	})
	b := &http.Client{Transport: &Transport{Credentials: creds, Origins: []string{p.srv.URL}}}
	resp, err := b.Get(p.srv.URL + "/resource")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"rt-1"}, seen, "OnToken gets the refresh token a rotates")
	assert.EqualValues(t, 1, p.fetches.Load())
}

func TestStoreRefreshUsesStoredRefreshToken(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	store := newTestFileStore(t, clock)
	a := newStoreMember(t, p, store, clock, true)
	_, err := a.get(t, p) // a spends rt-0 and stores tok-1 with rt-1
	require.NoError(t, err)
	// Another process's 401 left only the refresh token in the store.
	key := StoreKey(TokenIdentity{TokenURL: p.srv.URL + "/token", ClientID: "c"})
	st, err := store.Load(context.Background(), key)
	require.NoError(t, err)
	ok, err := InvalidateStoredToken(context.Background(), store, key, st)
	require.NoError(t, err)
	require.True(t, ok)
	// b starts with rt-0, which a spent: it must refresh with rt-1.
	b := newStoreMember(t, p, store, clock, true)
	_, err = b.get(t, p)
	require.NoError(t, err, "b presented the spent refresh token")
	assert.EqualValues(t, 2, p.fetches.Load())
}

// NewClient retries a request that met a cool-down: it is not final, and
// the endpoint is asked again only after the pause.
func TestNewClientRetriesAfterCoolDown(t *testing.T) {
	p := newStoreIdP(t)
	p.set(func(p *storeIdP) { p.status, p.retry = http.StatusServiceUnavailable, "1" })
	go func() {
		// The endpoint recovers once it was asked.
		for p.fetches.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		p.set(func(p *storeIdP) { p.status, p.retry = 0, "" })
	}()
	cfg := &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: p.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	c := NewClient(&Transport{Credentials: ClientCredentials(cfg, OAuth2Options{HTTPClient: p.srv.Client()}), Origins: []string{p.srv.URL}})
	c.RetryWaitMin, c.RetryWaitMax, c.RetryMax = 10*time.Millisecond, 50*time.Millisecond, 400
	resp, err := c.Get(p.srv.URL + "/resource")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 2, p.fetches.Load(), "one 503, then one fetch after the pause: the retries in between failed fast")
}

// slowStore answers no call until its context ends: a Redis that hangs.
type slowStore struct{ failingStore }

func (s *slowStore) Load(ctx context.Context, _ string) (StoredToken, error) {
	<-ctx.Done()
	return StoredToken{}, ctx.Err()
}
func (s *slowStore) CoolDown(ctx context.Context, _ string) (time.Time, error) {
	<-ctx.Done()
	return time.Time{}, ctx.Err()
}

func TestStoreSlowCallsAreBounded(t *testing.T) {
	p, clock := newStoreIdP(t), newFakeClock()
	a := newStoreMember(t, p, &slowStore{}, clock, false)
	done := make(chan error, 1)
	go func() {
		_, err := a.get(t, p)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "the request is served from the source once the store times out")
	case <-time.After(time.Minute): // hang guard
		t.Fatal("a slow store held the request")
	}
	assert.EqualValues(t, 1, p.fetches.Load())
	select {
	case e := <-a.events:
		assert.ErrorContains(t, e.Err, "deadline exceeded")
	default:
		t.Fatal("no EventStoreFault")
	}
}
