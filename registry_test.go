package reauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth/mockserver"
)

// tokenPrefix starts every token a faulty realm of these tests hands out:
// grep-able, like testPassword, and never allowed in an error.
const tokenPrefix = "regtok-SENTINEL-"

const testService = "registry.test"

// realmFetch is one token request as the realm saw it.
type realmFetch struct {
	Method, Authorization string
	Values                url.Values // the query of a GET, the form of a POST
}

// realmGrant is what one 200 from the realm handed out.
type realmGrant struct {
	Token        string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// mockRegistry is the mock server's registry (/v2/) and token realm
// (/registry/token): the registry token protocol is the mock's, written
// once. The front records what each side saw and what the realm granted;
// its hooks inject the faults a test needs, and nothing else.
type mockRegistry struct {
	*httptest.Server
	mock *mockserver.Server

	mu      sync.Mutex
	reqs    []seen       // the requests to /v2/
	fetches []realmFetch // the requests to /registry/token
	grants  []realmGrant // the realm's 200 answers, in order

	// Faults, set between requests.
	realm            string                                            // the realm the challenges name; "": the mock's own
	challengeActions func(r *http.Request) string                      // the actions the challenges ask for; nil: the mock's
	realmFault       http.HandlerFunc                                  // answers /registry/token instead of the mock
	registryFault    func(w http.ResponseWriter, r *http.Request) bool // may answer /v2/ instead of the mock: true when it did
}

// registryConfig is the mock's configuration for these tests: testUser may
// pull and push team/app and team/other and only pull team/readonly;
// library/alpine is public.
func registryConfig() mockserver.Config {
	cfg := mockserver.DefaultConfig()
	cfg.Users = map[string]string{testUser: testPassword}
	cfg.Registry.Service = testService
	cfg.Registry.Repos = map[string]mockserver.RepoAccess{
		"library/alpine": {Public: true},
		"team/app":       {Pull: []string{testUser}, Push: []string{testUser}},
		"team/other":     {Pull: []string{testUser}, Push: []string{testUser}},
		"team/readonly":  {Pull: []string{testUser}},
	}
	return cfg
}

// newMockRegistry serves a mock server made from registryConfig, changed by
// edit.
func newMockRegistry(t *testing.T, edit ...func(*mockserver.Config)) *mockRegistry {
	t.Helper()
	cfg := registryConfig()
	for _, e := range edit {
		e(&cfg)
	}
	mock, err := mockserver.NewUnstarted(cfg)
	require.NoError(t, err)
	t.Cleanup(mock.Close)
	return frontOf(t, mock)
}

// frontOf serves mock at an origin of its own: a second front is another
// origin with the same registry and realm, whose tokens both accept.
func frontOf(t *testing.T, mock *mockserver.Server) *mockRegistry {
	t.Helper()
	m := &mockRegistry{mock: mock}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	return m
}

func (m *mockRegistry) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/registry/token" {
		m.serveRealm(w, r)
		return
	}
	m.mu.Lock()
	m.reqs = append(m.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Proxy-Authorization"), ""})
	fault, realm, actions := m.registryFault, m.realm, m.challengeActions
	m.mu.Unlock()
	if fault != nil && fault(w, r) {
		return
	}
	if realm == "" && actions == nil {
		m.mock.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	m.mock.ServeHTTP(rec, r)
	if c := rec.Header().Get("WWW-Authenticate"); c != "" {
		if realm != "" {
			c = strings.Replace(c, strconv.Quote(m.realmURL()), strconv.Quote(realm), 1)
		}
		if actions != nil {
			c = withActions(c, actions(r))
		}
		rec.Header().Set("WWW-Authenticate", c)
	}
	copyResponse(w, rec)
}

// withActions replaces the actions of the scope of challenge c.
func withActions(c, actions string) string {
	i := strings.Index(c, `scope="`)
	if i < 0 {
		return c
	}
	i += len(`scope="`)
	j := i + strings.IndexByte(c[i:], '"')
	k := i + strings.LastIndexByte(c[i:j], ':')
	return c[:k+1] + actions + c[j:]
}

func (m *mockRegistry) serveRealm(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		values, _ = url.ParseQuery(string(body))
	}
	m.mu.Lock()
	m.fetches = append(m.fetches, realmFetch{r.Method, r.Header.Get("Authorization"), values})
	fault := m.realmFault
	m.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body)) // a fault may pass it on
	if fault != nil {
		fault(w, r)
		return
	}
	rec := httptest.NewRecorder()
	m.mock.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		var g realmGrant
		json.Unmarshal(rec.Body.Bytes(), &g)
		m.mu.Lock()
		m.grants = append(m.grants, g)
		m.mu.Unlock()
	}
	copyResponse(w, rec)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// realmURL is the mock's token realm at this front.
func (m *mockRegistry) realmURL() string { return m.URL + "/registry/token" }

func (m *mockRegistry) requests() []seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reqs)
}

// count is the number of requests to /v2/.
func (m *mockRegistry) count() int { return len(m.requests()) }

func (m *mockRegistry) seen() []realmFetch {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.fetches)
}

// grant returns the i-th 200 answer of the realm.
func (m *mockRegistry) grant(t *testing.T, i int) realmGrant {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Greater(t, len(m.grants), i, "the realm granted %d token(s)", len(m.grants))
	return m.grants[i]
}

// registryClient binds the registry, which is also its realm's origin.
func registryClient(reg *mockRegistry, creds Credentials) *http.Client {
	return clientFor(&Transport{Credentials: creds, Origins: reg.origins()})
}

func (m *mockRegistry) origins() []string { return []string{m.URL} }

func do(t *testing.T, c *http.Client, method, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestRegistryAnonymousPull(t *testing.T) {
	reg := newMockRegistry(t)
	resp, err := do(t, registryClient(reg, Registry("", "")), "GET", reg.URL+"/v2/library/alpine/manifests/latest")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	reqs := reg.requests()
	require.Len(t, reqs, 2, "challenge, then the retry with the token")
	assert.Empty(t, reqs[0].Authorization, "no token held yet: nothing up front")
	assert.Equal(t, "Bearer "+reg.grant(t, 0).Token, reqs[1].Authorization)
	fetches := reg.seen()
	require.Len(t, fetches, 1)
	assert.Equal(t, "GET", fetches[0].Method)
	assert.Empty(t, fetches[0].Authorization, "anonymous")
	assert.Equal(t, url.Values{"service": {testService}, "scope": {"repository:library/alpine:pull"}}, fetches[0].Values)
}

func TestRegistryPushAfterPullMergesScopes(t *testing.T) {
	reg := newMockRegistry(t)
	// A registry that asks only for what the request lacks, as some do.
	reg.challengeActions = func(r *http.Request) string {
		if r.Method == http.MethodGet {
			return "pull"
		}
		return "push"
	}
	c := registryClient(reg, Registry(testUser, testPassword))

	_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
	require.NoError(t, err)
	resp, err := do(t, c, "POST", reg.URL+"/v2/team/app/blobs/uploads/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	_, err = do(t, c, "HEAD", reg.URL+"/v2/team/app/manifests/v1")
	require.NoError(t, err)

	fetches := reg.seen()
	require.Len(t, fetches, 2)
	assert.Equal(t, []string{"repository:team/app:pull"}, fetches[0].Values["scope"])
	assert.Equal(t, []string{"repository:team/app:pull,push"}, fetches[1].Values["scope"], "the push challenge merged with the pull held")
	for _, f := range fetches {
		assert.Equal(t, basicValue, f.Authorization, "Basic goes to the realm")
		assert.Equal(t, testUser, f.Values.Get("account"))
	}
	reqs := reg.requests()
	require.Len(t, reqs, 5, "pull: 2, push: 2, then the pull,push token up front: 1")
	assert.Equal(t, "Bearer "+reg.grant(t, 1).Token, reqs[4].Authorization)
	for _, r := range reqs {
		assert.False(t, strings.HasPrefix(r.Authorization, "Basic"), "the password never goes to the registry")
	}
}

func TestRegistryTokenIsCachedPerScope(t *testing.T) {
	reg := newMockRegistry(t)
	c := registryClient(reg, Registry(testUser, testPassword))
	steps := []struct {
		method, path      string
		requests, fetches int // added by this step
	}{
		{"GET", "/v2/team/app/manifests/v1", 2, 1},
		{"GET", "/v2/team/app/manifests/v1", 1, 0},
		{"HEAD", "/v2/team/app/blobs/sha256:abc", 1, 0},
		{"GET", "/v2/team/app/tags/list", 1, 0},
		{"GET", "/v2/team/other/manifests/v1", 2, 1}, // another repository, another scope
		{"GET", "/v2/team/app/manifests/v2", 1, 0},
		{"PUT", "/v2/team/app/manifests/v2", 2, 1}, // push is not held: nothing up front
	}
	requests, fetches := 0, 0
	for _, s := range steps {
		_, err := do(t, c, s.method, reg.URL+s.path)
		require.NoError(t, err, "%s %s", s.method, s.path)
		requests, fetches = requests+s.requests, fetches+s.fetches
		assert.Equal(t, requests, reg.count(), "registry requests after %s %s", s.method, s.path)
		assert.Len(t, reg.seen(), fetches, "token fetches after %s %s", s.method, s.path)
	}
}

func TestRegistryTokenExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		issuedAgo time.Duration // issued_at before the fetch; 0: not sent
		advance   time.Duration
		refetch   bool
	}{
		{"within expires_in: cached", 120, 0, 100 * time.Second, false},
		{"past expires_in: fetched again", 120, 0, 121 * time.Second, true},
		{"in its last 5 s: treated as expired", 120, 0, 116 * time.Second, true},
		{"no expires_in: 60 s", 0, 0, 50 * time.Second, false},
		{"no expires_in: 60 s, then fetched again", 0, 0, 61 * time.Second, true},
		{"issued_at in the past counts", 120, 100 * time.Second, 30 * time.Second, true},
		{"issued_at in the future is clock skew", 120, -time.Hour, 100 * time.Second, false},
		// A realm whose clock is behind: the token would arrive stale, and
		// every request would fetch one (found by TestStress).
		{"issued_at past the token's life is clock skew", 120, 300 * 24 * time.Hour, 100 * time.Second, false},
		{"expires_in under 60 s: held 60 s (token.md)", 3, 0, 50 * time.Second, false},
		{"expires_in under 60 s: fetched again after 60 s", 3, 0, 61 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			// The realm issues at its clock: issued_at is tt.issuedAgo
			// before the client's (now when 0: the same as none).
			reg := newMockRegistry(t, func(c *mockserver.Config) {
				c.Registry.TokenLifetime = time.Duration(tt.expiresIn) * time.Second
				c.Clock = mockserver.NewManualClock(clock.Now().Add(-tt.issuedAgo))
			})
			c := registryClient(reg, RegistryWithOptions("", "", RegistryOptions{Now: clock.Now}))
			_, err := do(t, c, "GET", reg.URL+"/v2/library/alpine/manifests/v1")
			require.NoError(t, err)
			clock.Advance(tt.advance)
			_, err = do(t, c, "GET", reg.URL+"/v2/library/alpine/manifests/v1")
			require.NoError(t, err)
			if tt.refetch {
				assert.Len(t, reg.seen(), 2)
				assert.Equal(t, 4, reg.count())
			} else {
				assert.Len(t, reg.seen(), 1)
				assert.Equal(t, 3, reg.count())
			}
		})
	}
}

func TestRegistryConcurrentRequestsShareOneFetch(t *testing.T) {
	const n = 16
	reg := newMockRegistry(t)
	// Hold every first request until all n have arrived, so that all n
	// challenges are answered at the same time.
	var arrived atomic.Int32
	all := make(chan struct{})
	reg.registryFault = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-r.Context().Done():
				return true
			}
		}
		return false
	}
	c := registryClient(reg, Registry(testUser, testPassword))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := c.Get(reg.URL + "/v2/team/app/manifests/v1")
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, reg.seen(), 1, "one fetch for all the concurrent challenges")
	assert.Equal(t, 2*n, reg.count())
}

func TestRegistryOAuth2Form(t *testing.T) {
	t.Run("password grant, then the refresh token", func(t *testing.T) {
		reg := newMockRegistry(t)
		c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true, ClientID: "tests"}))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
		require.NoError(t, err)

		fetches := reg.seen()
		require.Len(t, fetches, 2)
		assert.Equal(t, "POST", fetches[0].Method)
		assert.Empty(t, fetches[0].Authorization)
		assert.Equal(t, url.Values{
			"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "access_type": {"offline"},
			"client_id": {"tests"}, "service": {testService}, "scope": {"repository:team/app:pull"},
		}, fetches[0].Values)
		assert.Equal(t, "POST", fetches[1].Method)
		assert.Equal(t, "refresh_token", fetches[1].Values.Get("grant_type"))
		refresh := reg.grant(t, 0).RefreshToken
		require.NotEmpty(t, refresh, "access_type=offline: the realm handed out a refresh token")
		assert.Equal(t, refresh, fetches[1].Values.Get("refresh_token"))
		assert.Empty(t, fetches[1].Values.Get("password"), "the refresh token replaces the password")
	})
	t.Run("identity token from the options", func(t *testing.T) {
		reg := newMockRegistry(t)
		// The identity token is a refresh token the realm issued before
		// (as to docker login).
		login := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
		_, err := do(t, login, "GET", reg.URL+"/v2/team/other/manifests/v1")
		require.NoError(t, err)
		identity := reg.grant(t, 0).RefreshToken
		require.NotEmpty(t, identity)

		c := registryClient(reg, RegistryWithOptions("", "", RegistryOptions{RefreshToken: identity}))
		_, err = do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		fetches := reg.seen()
		require.Len(t, fetches, 2)
		assert.Equal(t, "refresh_token", fetches[1].Values.Get("grant_type"))
		assert.Equal(t, identity, fetches[1].Values.Get("refresh_token"))
	})
	t.Run("refused refresh token: the password instead", func(t *testing.T) {
		reg := newMockRegistry(t) // knows no refresh token
		c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{RefreshToken: "stale-SENTINEL"}))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
		require.NoError(t, err)
		fetches := reg.seen()
		require.Len(t, fetches, 3)
		assert.Equal(t, []string{"POST", "GET", "GET"}, []string{fetches[0].Method, fetches[1].Method, fetches[2].Method}, "the refused refresh token is not sent again")
		assert.Equal(t, basicValue, fetches[1].Authorization)
	})
}

func TestRegistryPOSTFallsBackToGET(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			reg := newMockRegistry(t, func(c *mockserver.Config) { c.Registry.TokenPOST = status })
			c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
			resp, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
			require.NoError(t, err)

			fetches := reg.seen()
			require.Len(t, fetches, 3)
			assert.Equal(t, []string{"POST", "GET", "GET"}, []string{fetches[0].Method, fetches[1].Method, fetches[2].Method},
				"the realm's answer to POST is remembered")
			assert.Equal(t, basicValue, fetches[1].Authorization)
			assert.Equal(t, []string{"repository:team/app:pull"}, fetches[1].Values["scope"])
		})
	}
}

func TestRegistryFailuresAreTypedFinalAndSecretFree(t *testing.T) {
	tests := []struct {
		name     string
		user     string // Registry(user, testPassword); "" anonymous
		answer   string // the realm's 200 body
		badLogin bool   // the realm refuses the password
		is       error
		says     string
	}{
		{name: "not JSON", answer: "<html>login</html>", is: ErrTokenEndpoint, says: "not JSON"},
		{name: "no token", answer: `{"expires_in":60}`, is: ErrTokenEndpoint, says: "neither token nor access_token"},
		{name: "empty token", answer: `{"token":""}`, is: ErrTokenEndpoint, says: "neither token nor access_token"},
		{name: "token not a b64token", answer: `{"token":"` + tokenPrefix + ` x"}`, is: ErrTokenEndpoint, says: "not a valid b64token"},
		{name: "expires_in not a number", answer: `{"token":"` + tokenPrefix + `","expires_in":"soon"}`, is: ErrTokenEndpoint, says: `"expires_in" is not a float64`},
		{name: "larger than MaxTokenResponse", answer: `{"token":"` + tokenPrefix + `","pad":"` + strings.Repeat("x", MaxTokenResponse) + `"}`, is: ErrTokenEndpoint, says: "larger than"},
		{name: "password refused by the realm", user: "mallory", badLogin: true, is: ErrUnauthorized, says: "unknown user or wrong password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newMockRegistry(t)
			if tt.answer != "" { // a faulty realm
				reg.realmFault = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.answer) }
			}
			creds := Registry("", "")
			if tt.user != "" {
				creds = Registry(tt.user, testPassword)
			}
			rc := NewClient(&Transport{Credentials: creds, Origins: reg.origins()})
			rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
			_, err := rc.Get(reg.URL + "/v2/team/app/manifests/v1")
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, reg.realmURL(), te.Endpoint)
			assert.Contains(t, err.Error(), tt.says)
			if tt.answer != "" {
				assert.Equal(t, http.StatusOK, te.StatusCode)
				assert.True(t, strings.HasPrefix(te.Err.Error(), badTokenPrefix), "the Err says the 200 held no usable token")
				assert.ErrorIs(t, err, ErrFinal)
			}
			assertNoSecret(t, "the text", err.Error())
			assert.Len(t, reg.seen(), 1, "final: the retrying client does not ask again")
			assert.Equal(t, 1, reg.count())
		})
	}
}

func TestRegistryTokenErrorsAreFinalAndKeepNoEchoedSecret(t *testing.T) {
	var fetches atomic.Int32
	reg := newMockRegistry(t)
	reg.realmFault = func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_request","error_description":"bad password %s"}`, testPassword)
	}
	rc := NewClient(&Transport{Credentials: Registry(testUser, testPassword), Origins: reg.origins()})
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
	_, err := rc.Get(reg.URL + "/v2/team/app/manifests/v1")
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusBadRequest, te.StatusCode)
	assertNoSecret(t, "the text", err.Error())
	assert.Equal(t, int32(1), fetches.Load(), "a 400 from the realm is final")
}

// A realm fetch, once started, is not cancelled by the requests waiting
// for it: it ends when the token arrives or after
// RegistryOptions.FetchTimeout, whichever is first.
func TestRegistryTokenFetchIsBoundedByFetchTimeoutNotByTheRequests(t *testing.T) {
	fetchEnded, release := make(chan struct{}), make(chan struct{})
	reg := newMockRegistry(t)
	t.Cleanup(func() { close(release) }) // runs before the realm closes
	reg.realmFault = func(w http.ResponseWriter, r *http.Request) {
		select { // a realm that does not answer
		case <-r.Context().Done():
			close(fetchEnded)
		case <-release:
		}
	}
	// The request would wait far longer; the fetch gives up first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", reg.URL+"/v2/team/app/manifests/v1", nil)
	creds := RegistryWithOptions("", "", RegistryOptions{FetchTimeout: 50 * time.Millisecond})
	_, err := (&Transport{Credentials: creds, Origins: reg.origins()}).RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, ctx.Err(), "the fetch's own deadline ended it, not the request's")
	select {
	case <-fetchEnded: // the realm request was cancelled, not left hanging
	case <-time.After(10 * time.Second):
		t.Fatal("the token fetch outlived FetchTimeout")
	}
}

func TestRegistryRefusalAfterAFreshTokenIsFinal(t *testing.T) {
	reg := newMockRegistry(t)
	// A registry that refuses every token, also the one just fetched.
	reg.registryFault = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "" {
			return false
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:team/app:pull",error="invalid_token"`, reg.realmURL(), testService))
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	c := registryClient(reg, Registry(testUser, testPassword))
	_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, ErrRefusedAfterRetry)
	assert.Equal(t, 2, reg.count())
	assert.Len(t, reg.seen(), 1)
	assertNoSecret(t, "the text", err.Error())
	assert.NotContains(t, err.Error(), reg.grant(t, 0).Token)

	t.Run("a held token refused later is replaced by a fresh one", func(t *testing.T) {
		reg.registryFault = nil
		require.True(t, reg.mock.RevokeAccessToken(reg.grant(t, 0).Token))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		reqs := reg.requests()
		require.Len(t, reqs, 4)
		assert.Equal(t, "Bearer "+reg.grant(t, 0).Token, reqs[2].Authorization, "sent up front")
		assert.Equal(t, "Bearer "+reg.grant(t, 1).Token, reqs[3].Authorization)
	})
}

func TestRegistryDeniedIsForbidden(t *testing.T) {
	reg := newMockRegistry(t) // testUser may pull team/readonly, not push it
	_, err := do(t, registryClient(reg, Registry(testUser, testPassword)), "PUT", reg.URL+"/v2/team/readonly/manifests/v1")
	var fe *ForbiddenError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, []RegistryError{{Code: "DENIED", Message: "requested access to the resource is denied"}}, fe.RegistryErrors())
	assert.Equal(t, 2, reg.count(), "403 is final: no token fetch, no retry")
	assert.Len(t, reg.seen(), 1)
}

func TestRegistryErrorsRedactWhatTheServersEcho(t *testing.T) {
	t.Run("a 403's registry error echoing the token", func(t *testing.T) {
		reg := newMockRegistry(t)
		reg.registryFault = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Header.Get("Authorization") == "" {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			msg, _ := json.Marshal("token " + r.Header.Get("Authorization") + " may not push")
			fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":%s}]}`, msg)
			return true
		}
		_, err := do(t, registryClient(reg, Registry(testUser, testPassword)), "PUT", reg.URL+"/v2/team/app/manifests/v1")
		var fe *ForbiddenError
		require.ErrorAs(t, err, &fe)
		assertNoSecret(t, "the text", err.Error())
		assertNoSecret(t, "the text", fmt.Sprintf("%#v", *fe))
		token := reg.grant(t, 0).Token
		assert.NotContains(t, err.Error(), token)
		assert.NotContains(t, fmt.Sprintf("%#v", *fe), token)
		assert.True(t, strings.HasSuffix(err.Error(), "registry error DENIED: token Bearer [redacted] may not push"), "the message is kept")
	})
	t.Run("a realm's malformed response echoing the password", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 4096)
				conn.Read(buf)
				io.WriteString(conn, "HTTP/1.1 "+testPassword+" OK\r\n\r\n") // a malformed status code
				conn.Close()
			}
		}()
		realmURL := "http://" + ln.Addr().String() + "/token"
		reg := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="s",scope="repository:a:pull"`, realmURL))
			w.WriteHeader(http.StatusUnauthorized)
		})
		c := clientFor(&Transport{Credentials: Registry(testUser, testPassword), Origins: []string{reg.URL, "http://" + ln.Addr().String()}})
		_, err = get(t, c, reg.URL+"/v2/a/manifests/latest")
		require.Error(t, err)
		assertNoSecret(t, "the text", err.Error())
		assert.Contains(t, err.Error(), "malformed HTTP status code")
	})
}

func TestRegistryAnswersABasicChallenge(t *testing.T) {
	srv := newRecorder(t, basicServer)
	_, err := get(t, clientFor(&Transport{Credentials: Registry(testUser, testPassword), Origins: []string{srv.URL}}), srv.URL+"/v2/")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.count())

	_, err = get(t, clientFor(&Transport{Credentials: Registry("", ""), Origins: []string{srv.URL}}), srv.URL+"/v2/")
	assert.ErrorIs(t, err, ErrNoCredentials, "anonymous has nothing to offer")
}

// fakeNet is a Base that answers for hosts by name without any network:
// nothing it is given is ever dialled.
type fakeNet struct {
	mu    sync.Mutex
	hosts []string
	serve func(r *http.Request) *http.Response
}

func (f *fakeNet) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.hosts = append(f.hosts, r.URL.Host)
	f.mu.Unlock()
	resp := f.serve(r)
	resp.Request = r
	return resp, nil
}

func (f *fakeNet) saw(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.hosts, host)
}

func TestRegistryRealmPolicy(t *testing.T) {
	tests := []struct {
		name     string
		registry string // origin
		realm    string
		resolves []string // what the injected resolver answers; nil: it must not be asked
		allow    bool     // AllowPrivateRealms
		refused  string   // a part of the refused realm's reason; "" when the realm is used
	}{
		{name: "https realm on a public address", registry: "https://registry.example", realm: "https://auth.example/token", resolves: []string{"93.184.216.34"}},
		{name: "https realm on the registry's own host", registry: "https://registry.example", realm: "https://registry.example:5001/token"},
		{name: "plain http realm for an https registry", registry: "https://registry.example", realm: "http://auth.example/token", refused: "plain http"},
		{name: "plain http realm for a plain http registry", registry: "http://registry.example", realm: "http://auth.example/token", resolves: []string{"93.184.216.34"}},
		{name: "private address", registry: "https://registry.example", realm: "https://auth.example/token", resolves: []string{"10.0.0.1"}, refused: "10.0.0.1"},
		{name: "private address, allowed", registry: "https://registry.example", realm: "https://auth.example/token", allow: true},
		{name: "one private address among public ones", registry: "https://registry.example", realm: "https://auth.example/token", resolves: []string{"93.184.216.34", "192.168.1.5"}, refused: "192.168.1.5"},
		{name: "link-local metadata address", registry: "https://registry.example", realm: "https://169.254.169.254/latest", refused: "169.254.169.254"},
		{name: "IPv4-mapped private address", registry: "https://registry.example", realm: "https://[::ffff:10.1.2.3]/token", refused: "10.1.2.3"},
		{name: "unique local IPv6", registry: "https://registry.example", realm: "https://auth.example/token", resolves: []string{"fd00::1"}, refused: "fd00::1"},
		{name: "shared address space", registry: "https://registry.example", realm: "https://auth.example/token", resolves: []string{"100.64.0.7"}, refused: "100.64.0.7"},
		{name: "loopback realm of a public registry", registry: "https://registry.example", realm: "http://127.0.0.1:8080/token", refused: "127.0.0.1"},
		{name: "localhost realm of a public registry", registry: "https://registry.example", realm: "https://localhost/token", refused: "::1"},
		{name: "loopback realm of a loopback registry", registry: "http://localhost:5000", realm: "http://127.0.0.1:5001/token"},
		{name: "userinfo in the realm", registry: "https://registry.example", realm: "https://user:pw@auth.example/token", refused: "userinfo"},
		{name: "not http", registry: "https://registry.example", realm: "file:///etc/passwd", refused: "not an absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			realmURL, err := url.Parse(tt.realm)
			require.NoError(t, err)
			regURL, _ := url.Parse(tt.registry)
			fake := &fakeNet{serve: func(r *http.Request) *http.Response {
				h := http.Header{}
				if r.URL.Host == regURL.Host && r.URL.Path != "/token" {
					if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
						return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}
					}
					h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="s",scope="repository:a:pull"`, tt.realm))
					return &http.Response{StatusCode: 401, Header: h, Body: http.NoBody}
				}
				return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(`{"token":"t0k"}`))}
			}}
			var lookups atomic.Int32
			opts := RegistryOptions{AllowPrivateRealms: tt.allow, LookupNetIP: func(ctx context.Context, host string) ([]netip.Addr, error) {
				lookups.Add(1)
				var out []netip.Addr
				for _, s := range tt.resolves {
					out = append(out, netip.MustParseAddr(s))
				}
				return out, nil
			}}
			// A realm on a name is dialled at the addresses checked, by a
			// clone of RealmTransport; the test network serves them locally.
			realmNet := newTestNet()
			serveRealm := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fake.mu.Lock()
				fake.hosts = append(fake.hosts, r.Host)
				fake.mu.Unlock()
				io.WriteString(w, `{"token":"t0k"}`)
			})
			for _, srv := range []*httptest.Server{httptest.NewServer(serveRealm), httptest.NewTLSServer(serveRealm)} {
				t.Cleanup(srv.Close)
				for _, a := range tt.resolves {
					realmNet.serve(net.JoinHostPort(a, map[bool]string{false: "80", true: "443"}[srv.TLS != nil]), srv)
				}
			}
			opts.RealmTransport = realmNet.transport(t)
			tr := &Transport{Base: fake, Credentials: RegistryWithOptions("", "", opts), Origins: []string{tt.registry}, InsecureAllowHTTP: true}
			_, err = get(t, clientFor(tr), tt.registry+"/v2/a/manifests/latest")
			assert.Equal(t, tt.resolves != nil, lookups.Load() > 0, "resolver asked")
			for _, d := range realmNet.dials() {
				host, _, _ := net.SplitHostPort(d)
				assert.Contains(t, tt.resolves, host, "only checked addresses are dialled")
			}
			if tt.refused == "" {
				require.NoError(t, err)
				assert.True(t, fake.saw(realmURL.Host), "the realm was asked")
				return
			}
			require.ErrorIs(t, err, ErrRealmNotAllowed)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			assert.Contains(t, te.Err.Error(), tt.refused)
			assert.NotContains(t, err.Error(), "pw@")
			assert.False(t, fake.saw(realmURL.Host), "nothing is sent to a refused realm")
			assert.True(t, errors.Is(err, ErrFinal), "no retry can change it")
		})
	}
}

func TestRegistryRealmRedirects(t *testing.T) {
	reg := newMockRegistry(t)         // library/alpine is public: the password is not needed
	elsewhere := frontOf(t, reg.mock) // another origin: tokens from its realm are good
	// The realm the registry names redirects to elsewhere's, or, in loop,
	// to a realm that redirects to itself.
	var redirects atomic.Int32
	var inLoop atomic.Bool
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, loop.URL+"/token", http.StatusFound)
	}))
	t.Cleanup(loop.Close)
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		if inLoop.Load() {
			http.Redirect(w, r, loop.URL+"/token", http.StatusFound)
			return
		}
		http.Redirect(w, r, elsewhere.realmURL()+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(realm.Close)
	reg.realm = realm.URL + "/token"
	pull := func(creds Credentials) error {
		_, err := get(t, clientFor(&Transport{Credentials: creds, Origins: []string{reg.URL, realm.URL}}), reg.URL+"/v2/library/alpine/manifests/v1")
		return err
	}

	t.Run("GET to another origin: followed without the password", func(t *testing.T) {
		require.NoError(t, pull(Registry(testUser, testPassword)))
		fetches := elsewhere.seen()
		require.Len(t, fetches, 1)
		assert.Empty(t, fetches[0].Authorization)
		assert.Equal(t, []string{"repository:library/alpine:pull"}, fetches[0].Values["scope"])
	})
	t.Run("POST to another origin: refused", func(t *testing.T) {
		err := pull(RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
		require.ErrorIs(t, err, ErrRealmNotAllowed)
		assert.Contains(t, err.Error(), "another origin")
		assert.Len(t, elsewhere.seen(), 1, "the form never reached the other origin")
	})
	t.Run("a redirect loop ends", func(t *testing.T) {
		inLoop.Store(true)
		redirects.Store(0)
		require.ErrorIs(t, pull(Registry("", "")), ErrRealmNotAllowed)
		assert.Equal(t, int32(maxRealmRedirects+1), redirects.Load())
	})
}

func TestRequestScope(t *testing.T) {
	tests := []struct {
		method, path string
		resource     string // "" when nothing is derived
		actions      []string
	}{
		{"GET", "/v2/library/alpine/manifests/latest", "repository:library/alpine", []string{"pull"}},
		{"HEAD", "/v2/a/blobs/sha256:0123", "repository:a", []string{"pull"}},
		{"GET", "/v2/a/b/c/tags/list", "repository:a/b/c", []string{"pull"}},
		{"GET", "/v2/a/referrers/sha256:0123", "repository:a", []string{"pull"}},
		{"POST", "/v2/a/blobs/uploads/", "repository:a", []string{"pull", "push"}},
		{"PATCH", "/v2/a/blobs/uploads/5f2c", "repository:a", []string{"pull", "push"}},
		{"PUT", "/v2/a/manifests/v1", "repository:a", []string{"pull", "push"}},
		{"DELETE", "/v2/a/manifests/sha256:0123", "repository:a", []string{"pull", "push"}},
		{"GET", "/v2/a/manifests/tags/list", "repository:a/manifests", []string{"pull"}},
		{"GET", "/v2/", "", nil},
		{"GET", "/v2/_catalog", "", nil},
		{"GET", "/v2/Upper/manifests/v1", "", nil},
		{"GET", "/v2/a/blobs/uploads", "repository:a", []string{"pull"}}, // a blob or the upload endpoint: a's either way
		{"GET", "/other/a/manifests/v1", "", nil},
		{"GET", "/v2/manifests/v1", "", nil},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "https://registry.example"+tt.path, nil)
		resource, actions, ok := requestScope(r)
		assert.Equal(t, tt.resource != "", ok, "%s %s", tt.method, tt.path)
		assert.Equal(t, tt.resource, resource, "%s %s", tt.method, tt.path)
		assert.Equal(t, tt.actions, actions, "%s %s", tt.method, tt.path)
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		param string
		want  []string
	}{
		{"repository:a:pull", []string{"repository:a:pull"}},
		{"repository:a:push,pull,pull", []string{"repository:a:pull,push"}},
		{"repository:b:pull repository:a:push repository:a:pull", []string{"repository:a:pull,push", "repository:b:pull"}},
		{"repository:localhost:5000/a:pull", []string{"repository:localhost:5000/a:pull"}},
		{"registry:catalog:*", []string{"registry:catalog:*"}},
		{"opaque", []string{"opaque"}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		var got []string
		scopes, err := parseScopes(tt.param)
		require.NoError(t, err)
		for _, s := range scopes {
			got = append(got, s.String())
		}
		assert.Equal(t, tt.want, got, tt.param)
	}
}

func TestRegistryPasswordGoesOnlyToABoundRealm(t *testing.T) {
	reg := newMockRegistry(t)
	realm := frontOf(t, reg.mock)
	reg.realm = realm.realmURL()
	// The registry is bound, its realm (another origin) is not.
	c := clientFor(&Transport{Credentials: Registry(testUser, testPassword), Origins: []string{reg.URL}})
	_, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1")
	require.ErrorIs(t, err, ErrRealmNotAllowed)
	assert.Contains(t, err.Error(), "Transport.Origins")
	assert.Empty(t, realm.seen(), "nothing, least of all the password, went to the unbound realm")

	// RegistryOptions.RealmOrigins names the realm's origin: the password
	// may go there (Docker Hub's auth.docker.io, say), and nowhere else.
	c = clientFor(&Transport{Credentials: RegistryWithOptions(testUser, testPassword, RegistryOptions{RealmOrigins: []string{realm.URL}}), Origins: []string{reg.URL}})
	resp, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, realm.seen(), 1, "the realm listed in RealmOrigins got the login")

	_, err = get(t, clientFor(&Transport{Credentials: RegistryWithOptions(testUser, testPassword, RegistryOptions{RealmOrigins: []string{"https://user:pw@auth.example/x"}}), Origins: []string{reg.URL}}), reg.URL+"/v2/team/app/manifests/v1")
	require.ErrorIs(t, err, ErrConfig, "a malformed RealmOrigins entry says so")
	assert.Contains(t, err.Error(), "RegistryOptions.RealmOrigins[0]")
	assert.NotContains(t, err.Error(), ":pw@")
	assert.Len(t, realm.seen(), 1, "nothing more went to the realm")

	// Anonymous credentials carry no secret: an unbound realm may serve them.
	c = clientFor(&Transport{Credentials: Registry("", ""), Origins: []string{reg.URL}})
	resp, err = get(t, c, reg.URL+"/v2/library/alpine/manifests/v1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, realm.seen(), 2)
}

func TestRegistryRealmErrorsNeverEchoARotatedRefreshToken(t *testing.T) {
	reg := newMockRegistry(t)
	c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
	_, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1") // the realm hands out the refresh token
	require.NoError(t, err)
	rotated := reg.grant(t, 0).RefreshToken
	require.NotEmpty(t, rotated)

	reg.realmFault = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"refresh token `+rotated+` revoked\nFAKE LOG LINE"}`)
	}
	_, err = do(t, c, http.MethodPost, reg.URL+"/v2/team/app/blobs/uploads/") // push: a new scope, a new fetch
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.NotContains(t, err.Error(), rotated)
	assert.NotContains(t, err.Error(), "\n", "no forged log lines")
	assert.Contains(t, te.Description, "revoked")
}
