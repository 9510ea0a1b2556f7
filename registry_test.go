package reauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenPrefix starts every token the test realm issues: grep-able, like
// testPassword, and never allowed in an error.
const tokenPrefix = "regtok-SENTINEL-"

// realmFetch is one token request as the test realm saw it.
type realmFetch struct {
	Method, Authorization string
	Values                url.Values // the query of a GET, the form of a POST
}

// testRealm is a token realm of the registry token protocol (token.md,
// oauth.md). It issues a new token per fetch and remembers what each grants.
type testRealm struct {
	*httptest.Server
	mu      sync.Mutex
	fetches []realmFetch
	grants  map[string][]string // token → scopes granted
	issued  int

	// Set before the first request.
	postStatus   int               // 0: POST speaks OAuth2; otherwise POST gets this status
	expiresIn    int               // sent when > 0
	issuedAt     func() time.Time  // sent when set
	refreshToken string            // handed out by OAuth2 answers, accepted as a grant
	answer       func(w io.Writer) // when set, the 200 body instead of a token
	override     http.HandlerFunc  // when set, serves every request instead
}

func newTestRealm(t *testing.T) *testRealm {
	t.Helper()
	tr := &testRealm{grants: map[string][]string{}}
	tr.Server = httptest.NewServer(http.HandlerFunc(tr.serve))
	t.Cleanup(tr.Close)
	return tr
}

func (tr *testRealm) URL() string { return tr.Server.URL + "/token" }

func (tr *testRealm) serve(w http.ResponseWriter, r *http.Request) {
	if tr.override != nil {
		tr.override(w, r)
		return
	}
	_ = r.ParseForm()
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		values = r.PostForm
	}
	tr.mu.Lock()
	tr.fetches = append(tr.fetches, realmFetch{r.Method, r.Header.Get("Authorization"), values})
	tr.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		if a := r.Header.Get("Authorization"); a != "" && a != basicValue {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`)
			return
		}
		scopes = values["scope"]
	case http.MethodPost:
		if tr.postStatus != 0 {
			w.WriteHeader(tr.postStatus)
			return
		}
		switch values.Get("grant_type") {
		case "password":
			if values.Get("username") != testUser || values.Get("password") != testPassword {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"invalid_grant"}`)
				return
			}
		case "refresh_token":
			if tr.refreshToken == "" || values.Get("refresh_token") != tr.refreshToken {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"unknown refresh token"}`)
				return
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		scopes = strings.Fields(values.Get("scope"))
	}
	if tr.answer != nil {
		tr.answer(w)
		return
	}
	tr.mu.Lock()
	tr.issued++
	tok := fmt.Sprintf("%s%d", tokenPrefix, tr.issued)
	tr.grants[tok] = scopes
	tr.mu.Unlock()
	doc := map[string]any{"token": tok}
	if r.Method == http.MethodPost {
		doc = map[string]any{"access_token": tok}
		if tr.refreshToken != "" {
			doc["refresh_token"] = tr.refreshToken
		}
	}
	if tr.expiresIn > 0 {
		doc["expires_in"] = tr.expiresIn
	}
	if tr.issuedAt != nil {
		doc["issued_at"] = tr.issuedAt().Format(time.RFC3339)
	}
	json.NewEncoder(w).Encode(doc)
}

func (tr *testRealm) seen() []realmFetch {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.fetches)
}

// granted reports whether token grants action on resource.
func (tr *testRealm) granted(token, resource, action string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range tr.grants[token] {
		i := strings.LastIndexByte(s, ':')
		if i > 0 && s[:i] == resource && slices.Contains(strings.Split(s[i+1:], ","), action) {
			return true
		}
	}
	return false
}

// testRegistry is a registry that wants tokens from a testRealm: GET and
// HEAD need pull on the repository, other methods push.
type testRegistry struct {
	*recorder
	realm *testRealm
	// challengeActions gives the actions the challenge asks for; nil: "pull"
	// for GET and HEAD, "pull,push" otherwise.
	challengeActions func(r *http.Request) string
	// authorized answers a request whose token is good; nil: 200 "ok".
	authorized http.HandlerFunc
}

const testService = "registry.test"

func newTestRegistry(t *testing.T, realm *testRealm) *testRegistry {
	t.Helper()
	reg := &testRegistry{realm: realm}
	reg.recorder = newRecorder(t, reg.serve)
	return reg
}

func (reg *testRegistry) serve(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	name, _, _ := strings.Cut(rest, "/manifests/")
	name, _, _ = strings.Cut(name, "/blobs/")
	name, _, _ = strings.Cut(name, "/tags/")
	resource := "repository:" + name
	action := "push"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		action = "pull"
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !reg.realm.granted(token, resource, action) {
		actions := "pull,push"
		switch {
		case reg.challengeActions != nil:
			actions = reg.challengeActions(r)
		case action == "pull":
			actions = "pull"
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope="%s:%s"`, reg.realm.URL(), testService, resource, actions))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	if reg.authorized != nil {
		reg.authorized(w, r)
		return
	}
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	io.WriteString(w, "ok")
}

// registryClient binds the registry and its realm: the password goes to the
// realm only when its origin is bound.
func registryClient(reg *testRegistry, creds Credentials) *http.Client {
	return clientFor(&Transport{Credentials: creds, Origins: reg.origins()})
}

func (reg *testRegistry) origins() []string { return []string{reg.URL, reg.realm.Server.URL} }

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
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
	resp, err := do(t, registryClient(reg, Registry("", "")), "GET", reg.URL+"/v2/library/alpine/manifests/latest")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	reqs := reg.requests()
	require.Len(t, reqs, 2, "challenge, then the retry with the token")
	assert.Empty(t, reqs[0].Authorization, "no token held yet: nothing up front")
	assert.Equal(t, "Bearer "+tokenPrefix+"1", reqs[1].Authorization)
	fetches := realm.seen()
	require.Len(t, fetches, 1)
	assert.Equal(t, "GET", fetches[0].Method)
	assert.Empty(t, fetches[0].Authorization, "anonymous")
	assert.Equal(t, url.Values{"service": {testService}, "scope": {"repository:library/alpine:pull"}}, fetches[0].Values)
}

func TestRegistryPushAfterPullMergesScopes(t *testing.T) {
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
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

	fetches := realm.seen()
	require.Len(t, fetches, 2)
	assert.Equal(t, []string{"repository:team/app:pull"}, fetches[0].Values["scope"])
	assert.Equal(t, []string{"repository:team/app:pull,push"}, fetches[1].Values["scope"], "the push challenge merged with the pull held")
	for _, f := range fetches {
		assert.Equal(t, basicValue, f.Authorization, "Basic goes to the realm")
		assert.Equal(t, testUser, f.Values.Get("account"))
	}
	reqs := reg.requests()
	require.Len(t, reqs, 5, "pull: 2, push: 2, then the pull,push token up front: 1")
	assert.Equal(t, "Bearer "+tokenPrefix+"2", reqs[4].Authorization)
	for _, r := range reqs {
		assert.False(t, strings.HasPrefix(r.Authorization, "Basic"), "the password never goes to the registry")
	}
}

func TestRegistryTokenIsCachedPerScope(t *testing.T) {
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
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
		assert.Len(t, realm.seen(), fetches, "token fetches after %s %s", s.method, s.path)
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
			realm := newTestRealm(t)
			realm.expiresIn = tt.expiresIn
			if tt.issuedAgo != 0 {
				realm.issuedAt = func() time.Time { return clock.Now().Add(-tt.issuedAgo) }
			}
			reg := newTestRegistry(t, realm)
			c := registryClient(reg, RegistryWithOptions("", "", RegistryOptions{Now: clock.Now}))
			_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
			require.NoError(t, err)
			clock.Advance(tt.advance)
			_, err = do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
			require.NoError(t, err)
			if tt.refetch {
				assert.Len(t, realm.seen(), 2)
				assert.Equal(t, 4, reg.count())
			} else {
				assert.Len(t, realm.seen(), 1)
				assert.Equal(t, 3, reg.count())
			}
		})
	}
}

func TestRegistryConcurrentRequestsShareOneFetch(t *testing.T) {
	const n = 16
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
	// Hold every first request until all n have arrived, so that all n
	// challenges are answered at the same time.
	var arrived atomic.Int32
	all := make(chan struct{})
	inner := reg.serve
	reg.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-r.Context().Done():
				return
			}
		}
		inner(w, r)
	})
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
	assert.Len(t, realm.seen(), 1, "one fetch for all the concurrent challenges")
	assert.Equal(t, 2*n, reg.count())
}

func TestRegistryOAuth2Form(t *testing.T) {
	t.Run("password grant, then the refresh token", func(t *testing.T) {
		realm := newTestRealm(t)
		realm.refreshToken = "refresh-SENTINEL-1"
		reg := newTestRegistry(t, realm)
		c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true, ClientID: "tests"}))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
		require.NoError(t, err)

		fetches := realm.seen()
		require.Len(t, fetches, 2)
		assert.Equal(t, "POST", fetches[0].Method)
		assert.Empty(t, fetches[0].Authorization)
		assert.Equal(t, url.Values{
			"grant_type": {"password"}, "username": {testUser}, "password": {testPassword}, "access_type": {"offline"},
			"client_id": {"tests"}, "service": {testService}, "scope": {"repository:team/app:pull"},
		}, fetches[0].Values)
		assert.Equal(t, "POST", fetches[1].Method)
		assert.Equal(t, "refresh_token", fetches[1].Values.Get("grant_type"))
		assert.Equal(t, "refresh-SENTINEL-1", fetches[1].Values.Get("refresh_token"))
		assert.Empty(t, fetches[1].Values.Get("password"), "the refresh token replaces the password")
	})
	t.Run("identity token from the options", func(t *testing.T) {
		realm := newTestRealm(t)
		realm.refreshToken = "identity-SENTINEL"
		reg := newTestRegistry(t, realm)
		c := registryClient(reg, RegistryWithOptions("", "", RegistryOptions{RefreshToken: "identity-SENTINEL"}))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		fetches := realm.seen()
		require.Len(t, fetches, 1)
		assert.Equal(t, "refresh_token", fetches[0].Values.Get("grant_type"))
	})
	t.Run("refused refresh token: the password instead", func(t *testing.T) {
		realm := newTestRealm(t) // knows no refresh token
		reg := newTestRegistry(t, realm)
		c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{RefreshToken: "stale-SENTINEL"}))
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
		require.NoError(t, err)
		fetches := realm.seen()
		require.Len(t, fetches, 3)
		assert.Equal(t, []string{"POST", "GET", "GET"}, []string{fetches[0].Method, fetches[1].Method, fetches[2].Method}, "the refused refresh token is not sent again")
		assert.Equal(t, basicValue, fetches[1].Authorization)
	})
}

func TestRegistryPOSTFallsBackToGET(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			realm := newTestRealm(t)
			realm.postStatus = status
			reg := newTestRegistry(t, realm)
			c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
			resp, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			_, err = do(t, c, "GET", reg.URL+"/v2/team/other/manifests/v1")
			require.NoError(t, err)

			fetches := realm.seen()
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
		{name: "password refused by the realm", user: "mallory", badLogin: true, is: ErrUnauthorized, says: "incorrect username or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			realm := newTestRealm(t)
			if tt.answer != "" {
				realm.answer = func(w io.Writer) { io.WriteString(w, tt.answer) }
			}
			reg := newTestRegistry(t, realm)
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
			assert.Equal(t, realm.URL(), te.Endpoint)
			assert.Contains(t, err.Error(), tt.says)
			if tt.answer != "" {
				assert.Equal(t, http.StatusOK, te.StatusCode)
				assert.True(t, strings.HasPrefix(te.Err.Error(), badTokenPrefix), "the Err says the 200 held no usable token")
				assert.ErrorIs(t, err, ErrFinal)
			}
			assertNoSecret(t, "the text", err.Error())
			assert.Len(t, realm.seen(), 1, "final: the retrying client does not ask again")
			assert.Equal(t, 1, reg.count())
		})
	}
}

func TestRegistryTokenErrorsAreFinalAndKeepNoEchoedSecret(t *testing.T) {
	var fetches atomic.Int32
	realm := newTestRealm(t)
	realm.override = func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_request","error_description":"bad password %s"}`, testPassword)
	}
	reg := newTestRegistry(t, realm)
	rc := NewClient(&Transport{Credentials: Registry(testUser, testPassword), Origins: reg.origins()})
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
	_, err := rc.Get(reg.URL + "/v2/team/app/manifests/v1")
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusBadRequest, te.StatusCode)
	assertNoSecret(t, "the text", err.Error())
	assert.Equal(t, int32(1), fetches.Load(), "a 400 from the realm is final")
}

func TestRegistryTokenFetchEndsWithTheRequestsContext(t *testing.T) {
	fetchEnded, release := make(chan struct{}), make(chan struct{})
	realm := newTestRealm(t)
	t.Cleanup(func() { close(release) }) // runs before the realm closes
	realm.override = func(w http.ResponseWriter, r *http.Request) {
		select { // a realm that does not answer
		case <-r.Context().Done():
			close(fetchEnded)
		case <-release:
		}
	}
	reg := newTestRegistry(t, realm)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", reg.URL+"/v2/team/app/manifests/v1", nil)
	_, err := (&Transport{Credentials: Registry("", ""), Origins: reg.origins()}).RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-fetchEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the token fetch outlived the request's context")
	}
}

func TestRegistryRefusalAfterAFreshTokenIsFinal(t *testing.T) {
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
	reg.authorized = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:team/app:pull",error="invalid_token"`, realm.URL(), testService))
		w.WriteHeader(http.StatusUnauthorized)
	}
	c := registryClient(reg, Registry(testUser, testPassword))
	_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, ErrRefusedAfterRetry)
	assert.Equal(t, 2, reg.count())
	assert.Len(t, realm.seen(), 1)
	assertNoSecret(t, "the text", err.Error())

	t.Run("a held token refused later is replaced by a fresh one", func(t *testing.T) {
		reg.authorized = nil
		realm.mu.Lock()
		delete(realm.grants, tokenPrefix+"1") // revoked
		realm.mu.Unlock()
		_, err := do(t, c, "GET", reg.URL+"/v2/team/app/manifests/v1")
		require.NoError(t, err)
		reqs := reg.requests()
		require.Len(t, reqs, 4)
		assert.Equal(t, "Bearer "+tokenPrefix+"1", reqs[2].Authorization, "sent up front")
		assert.Equal(t, "Bearer "+tokenPrefix+"2", reqs[3].Authorization)
	})
}

func TestRegistryDeniedIsForbidden(t *testing.T) {
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
	reg.authorized = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
	}
	_, err := do(t, registryClient(reg, Registry(testUser, testPassword)), "PUT", reg.URL+"/v2/team/app/manifests/v1")
	var fe *ForbiddenError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, []RegistryError{{Code: "DENIED", Message: "requested access to the resource is denied"}}, fe.RegistryErrors())
	assert.Equal(t, 2, reg.count(), "403 is final: no token fetch, no retry")
	assert.Len(t, realm.seen(), 1)
}

func TestRegistryErrorsRedactWhatTheServersEcho(t *testing.T) {
	t.Run("a 403's registry error echoing the token", func(t *testing.T) {
		realm := newTestRealm(t)
		reg := newTestRegistry(t, realm)
		reg.authorized = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			msg, _ := json.Marshal("token " + r.Header.Get("Authorization") + " may not push")
			fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":%s}]}`, msg)
		}
		_, err := do(t, registryClient(reg, Registry(testUser, testPassword)), "PUT", reg.URL+"/v2/team/app/manifests/v1")
		var fe *ForbiddenError
		require.ErrorAs(t, err, &fe)
		assertNoSecret(t, "the text", err.Error())
		assertNoSecret(t, "the text", fmt.Sprintf("%#v", *fe))
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
	elsewhere := newTestRealm(t) // another origin: tokens from it are good
	var redirects atomic.Int32
	realm := newTestRealm(t)
	realm.override = func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, elsewhere.URL()+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	}
	reg := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); elsewhere.granted(tok, "repository:team/app", "pull") {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:team/app:pull"`, realm.URL(), testService))
		w.WriteHeader(http.StatusUnauthorized)
	})
	pull := func(creds Credentials) error {
		_, err := get(t, clientFor(&Transport{Credentials: creds, Origins: []string{reg.URL, realm.Server.URL}}), reg.URL+"/v2/team/app/manifests/v1")
		return err
	}

	t.Run("GET to another origin: followed without the password", func(t *testing.T) {
		require.NoError(t, pull(Registry(testUser, testPassword)))
		fetches := elsewhere.seen()
		require.Len(t, fetches, 1)
		assert.Empty(t, fetches[0].Authorization)
		assert.Equal(t, []string{"repository:team/app:pull"}, fetches[0].Values["scope"])
	})
	t.Run("POST to another origin: refused", func(t *testing.T) {
		err := pull(RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
		require.ErrorIs(t, err, ErrRealmNotAllowed)
		assert.Contains(t, err.Error(), "another origin")
		assert.Len(t, elsewhere.seen(), 1, "the form never reached the other origin")
	})
	t.Run("a redirect loop ends", func(t *testing.T) {
		loop := newTestRealm(t)
		loop.override = func(w http.ResponseWriter, r *http.Request) {
			redirects.Add(1)
			http.Redirect(w, r, loop.URL(), http.StatusFound)
		}
		realm.override = loop.override
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
	realm := newTestRealm(t)
	reg := newTestRegistry(t, realm)
	// The registry is bound, its realm (another origin) is not.
	c := clientFor(&Transport{Credentials: Registry(testUser, testPassword), Origins: []string{reg.URL}})
	_, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1")
	require.ErrorIs(t, err, ErrRealmNotAllowed)
	assert.Contains(t, err.Error(), "Transport.Origins")
	assert.Empty(t, realm.seen(), "nothing, least of all the password, went to the unbound realm")

	// Anonymous credentials carry no secret: an unbound realm may serve them.
	c = clientFor(&Transport{Credentials: Registry("", ""), Origins: []string{reg.URL}})
	resp, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRegistryRealmErrorsNeverEchoARotatedRefreshToken(t *testing.T) {
	const rotated = "ROTATED-REFRESH-SENTINEL-42"
	realm := newTestRealm(t)
	realm.refreshToken = rotated
	reg := newTestRegistry(t, realm)
	c := registryClient(reg, RegistryWithOptions(testUser, testPassword, RegistryOptions{PasswordGrant: true}))
	_, err := get(t, c, reg.URL+"/v2/team/app/manifests/v1") // the realm hands out the refresh token
	require.NoError(t, err)

	realm.override = func(w http.ResponseWriter, r *http.Request) {
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
