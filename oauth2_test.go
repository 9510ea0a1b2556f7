package reauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// getStatus sends a GET through c and returns the status, or the error.
func getStatus(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// bearerOf returns the access token of an Authorization field value.
func bearerOf(value string) string { return strings.TrimPrefix(value, "Bearer ") }

// countingSource is an oauth2.TokenSource that fetches a new token on each
// call, the way reauth expects a source to, and counts the calls.
type countingSource struct {
	calls    atomic.Int64
	lifetime time.Duration // 0: no expiry
	now      func() time.Time
	release  chan struct{} // when set, Token waits for it
}

func (s *countingSource) Token() (*oauth2.Token, error) {
	n := s.calls.Add(1)
	if s.release != nil {
		<-s.release
	}
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("at-%s-src%d", secretMarker, n), TokenType: "Bearer"}
	if s.lifetime > 0 {
		tok.Expiry = s.now().Add(s.lifetime)
	}
	return tok, nil
}

// testAuthRequest is what the Transport passes to Credentials, for tests
// that drive them directly.
func testAuthRequest(ctx context.Context) *AuthRequest {
	return NewAuthRequest(httptest.NewRequest(http.MethodGet, "https://api.example.test/items", nil).WithContext(ctx), nil, nil)
}

func TestOAuth2RefreshesATokenTheServerRefuses(t *testing.T) {
	refusals := []struct {
		name   string
		refuse func(w http.ResponseWriter)
	}{
		{"Bearer invalid_token", func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="revoked"`)
			w.WriteHeader(http.StatusUnauthorized)
		}},
		{"Bearer challenge without error code", func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(http.StatusUnauthorized)
		}},
		{"no challenge at all", func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) }},
		{"Bearer among other schemes", func(w http.ResponseWriter) {
			w.Header().Add("WWW-Authenticate", `Basic realm="legacy"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if e.accepts(bearerOf(r.Header.Get("Authorization"))) {
					io.WriteString(w, "ok")
					return
				}
				tc.refuse(w)
			})
			c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), OAuth2Options{}), Origins: []string{api.URL}})

			status, err := getStatus(t.Context(), c, api.URL)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			require.EqualValues(t, 1, e.fetches.Load(), "the first request fetches a token")

			e.revokeAll() // the resource server starts refusing it
			status, err = getStatus(t.Context(), c, api.URL)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			assert.EqualValues(t, 2, e.fetches.Load(), "one new token after the refusal")

			reqs := api.requests()
			require.Len(t, reqs, 3)
			assert.Equal(t, reqs[0].Authorization, reqs[1].Authorization, "the cached token is sent until refused")
			assert.NotEqual(t, reqs[1].Authorization, reqs[2].Authorization, "the retry carries the new token")
			assert.True(t, e.accepts(bearerOf(reqs[2].Authorization)))
		})
	}
}

// refusalGate opens when n parties have arrived. Waiting is bounded so that a
// broken scenario fails the test instead of hanging it; timedOut records
// that the scenario did not happen as designed.
type refusalGate struct {
	n        int64
	arrived  atomic.Int64
	open     chan struct{}
	timedOut atomic.Bool
}

func newRefusalGate(n int) *refusalGate { return &refusalGate{n: int64(n), open: make(chan struct{})} }

func (g *refusalGate) arrive() {
	if g.arrived.Add(1) == g.n {
		close(g.open)
	}
}

func (g *refusalGate) wait(ctx context.Context) {
	select {
	case <-g.open:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		g.timedOut.Store(true)
	}
}

// answerCounter calls onAnswer each time the Transport asks the
// credentials to answer a refusal.
type answerCounter struct {
	Credentials
	onAnswer func()
}

func (a answerCounter) Refused(r *AuthRequest, refusal *Refusal) (Retry, error) {
	a.onAnswer()
	return a.Credentials.Refused(r, refusal)
}

// fetchesAfterRevocation sends n concurrent requests with a token the
// resource server has just revoked and returns how many tokens were fetched
// for them. Every request is refused before any refusal is answered, and the
// token endpoint answers only once every refusal is being answered, so that
// each of the n refusals meets the fetch in progress.
func fetchesAfterRevocation(t *testing.T, n int, loopback bool) int64 {
	t.Helper()
	var armed atomic.Bool
	refused, answering := newRefusalGate(n), newRefusalGate(n)
	e := newTokenEndpoint(t, func(e *tokenEndpoint) {
		e.hold = func(r *http.Request) {
			if armed.Load() {
				answering.wait(r.Context())
			}
		}
	})
	api := func(w http.ResponseWriter, r *http.Request) {
		if armed.Load() && !e.accepts(bearerOf(r.Header.Get("Authorization"))) {
			refused.arrive()
			refused.wait(r.Context())
		}
		e.resource(w, r)
	}
	// The in-process Base serves the API only: token requests go over
	// loopback to the endpoint.
	opts := OAuth2Options{HTTPClient: &http.Client{Transport: http.DefaultTransport}}
	tr := &Transport{
		Credentials: answerCounter{ClientCredentials(e.clientCredentials(), opts), answering.arrive},
		Base:        inProcessBase(api),
		Origins:     []string{"https://api.example.test"},
	}
	url := "https://api.example.test/items"
	if loopback {
		srv := newRecorder(t, api)
		tr.Base, tr.Origins, url = nil, []string{srv.URL}, srv.URL+"/items"
	}
	c := clientFor(tr)
	status, err := getStatus(t.Context(), c, url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 1, e.fetches.Load())

	e.revokeAll()
	armed.Store(true)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			if status, err := getStatus(t.Context(), c, url); err != nil || status != http.StatusOK {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load(), "every request succeeds after one refresh")
	require.False(t, refused.timedOut.Load() || answering.timedOut.Load(), "the %d refusals were not concurrent", n)
	assert.EqualValues(t, n, answering.arrived.Load(), "every request was refused once")
	return e.fetches.Load() - 1
}

func TestConcurrentRefusalsOfOneTokenCauseOneFetch(t *testing.T) {
	assert.EqualValues(t, 1, fetchesAfterRevocation(t, 200, true))
}

// TestFetchesPerRevocation is the measurement the README quotes: token
// fetches per revocation, by number of concurrent requests refused.
func TestFetchesPerRevocation(t *testing.T) {
	for _, n := range []int{1, 10, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			got := fetchesAfterRevocation(t, n, false)
			t.Logf("%4d concurrent requests refused: %d token getStatus(es)", n, got)
			assert.EqualValues(t, 1, got)
		})
	}
}

func TestLateRefusalKeepsTheNewToken(t *testing.T) {
	src := &countingSource{}
	c := OAuth2(src)
	ar := testAuthRequest(t.Context())

	old, err := authorizeValue(c, ar)
	require.NoError(t, err)
	fresh, err := answerValue(c, ar, old, &Refusal{StatusCode: http.StatusUnauthorized})
	require.NoError(t, err)
	require.NotEqual(t, old, fresh)
	require.EqualValues(t, 2, src.calls.Load())

	// A request that was sent with the old token is refused after the
	// refresh: the new token answers it, and stays.
	late, err := answerValue(c, ar, old, &Refusal{StatusCode: http.StatusUnauthorized, Challenges: []Challenge{{Scheme: "Bearer", Params: map[string]string{"error": "invalid_token"}}}})
	require.NoError(t, err)
	assert.Equal(t, fresh, late)
	assert.EqualValues(t, 2, src.calls.Load(), "no fetch for a token already replaced")
	next, err := authorizeValue(c, ar)
	require.NoError(t, err)
	assert.Equal(t, fresh, next)

	// A refusal of the current token does replace it.
	newer, err := answerValue(c, ar, fresh, &Refusal{StatusCode: http.StatusUnauthorized})
	require.NoError(t, err)
	assert.NotEqual(t, fresh, newer)
	assert.EqualValues(t, 3, src.calls.Load())
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

func TestRefusedTokenIsNotSentWhileItsReplacementIsFetched(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	c := OAuth2(tokenSourceFunc(func() (*oauth2.Token, error) {
		n := calls.Add(1)
		if n == 2 {
			close(started)
			<-release
		}
		return &oauth2.Token{AccessToken: fmt.Sprint("tok", n)}, nil
	}))
	ar := testAuthRequest(t.Context())
	old, err := authorizeValue(c, ar)
	require.NoError(t, err)

	answered := make(chan string)
	go func() {
		v, _ := answerValue(c, ar, old, &Refusal{StatusCode: http.StatusUnauthorized})
		answered <- v
	}()
	<-started
	// A new request meanwhile waits for the replacement instead of sending
	// the refused token; with its context over, it gives up waiting.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	v, err := authorizeValue(c, testAuthRequest(done))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, v)

	close(release)
	assert.Equal(t, "Bearer tok2", <-answered)
	v, err = authorizeValue(c, ar)
	require.NoError(t, err)
	assert.Equal(t, "Bearer tok2", v)
}

func TestRefreshTokenKeepsRotatedTokensAndPersistsEach(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		t.Run(fmt.Sprintf("rotate=%v", rotate), func(t *testing.T) {
			e := newTokenEndpoint(t, func(e *tokenEndpoint) { e.rotate = rotate })
			api := newRecorder(t, e.resource)
			start := e.grantRefreshToken()
			var saved []*oauth2.Token
			var mu sync.Mutex
			creds := RefreshToken(e.config(), &oauth2.Token{RefreshToken: start}, OAuth2Options{
				OnToken: func(_ context.Context, tok *oauth2.Token) error {
					mu.Lock()
					defer mu.Unlock()
					saved = append(saved, tok)
					return nil
				},
			})
			c := clientFor(&Transport{Credentials: creds, Origins: []string{api.URL}})

			for i := range 3 {
				status, err := getStatus(t.Context(), c, api.URL)
				require.NoError(t, err, "round %d", i)
				require.Equal(t, http.StatusOK, status)
				e.revokeAll()
			}
			assert.EqualValues(t, 3, e.fetches.Load(), "one refresh per revocation")
			require.Len(t, saved, 3, "OnToken sees every token")
			last := saved[len(saved)-1]
			assert.True(t, e.acceptsRefresh(last.RefreshToken), "the saved refresh token is the one the endpoint honours")
			seen := map[string]bool{start: true}
			for _, tok := range saved {
				assert.NotEmpty(t, tok.AccessToken)
				if rotate {
					assert.False(t, seen[tok.RefreshToken], "each rotation yields a new refresh token")
				} else {
					assert.Equal(t, start, tok.RefreshToken, "a refresh token that is not rotated is kept")
				}
				seen[tok.RefreshToken] = true
			}
		})
	}
}

func TestRefreshTokenUsesTheAccessTokenItStartsWith(t *testing.T) {
	e := newTokenEndpoint(t, nil)
	api := newRecorder(t, e.resource)
	rt := e.grantRefreshToken()
	// An access token saved by an earlier run: it is valid until revoked.
	cfgCreds := ClientCredentials(e.clientCredentials(), OAuth2Options{})
	saved, err := authorizeValue(cfgCreds, testAuthRequest(t.Context()))
	require.NoError(t, err)

	c := clientFor(&Transport{Credentials: RefreshToken(e.config(), &oauth2.Token{AccessToken: bearerOf(saved), RefreshToken: rt, Expiry: time.Now().Add(time.Hour)}, OAuth2Options{}), Origins: []string{api.URL}})
	status, err := getStatus(t.Context(), c, api.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 1, e.fetches.Load(), "no refresh while the saved access token works")
	assert.Equal(t, saved, api.requests()[0].Authorization)
}

func TestOnTokenFailureDoesNotLoseTheRotatedRefreshToken(t *testing.T) {
	e := newTokenEndpoint(t, func(e *tokenEndpoint) { e.rotate = true })
	api := newRecorder(t, e.resource)
	var calls atomic.Int64
	creds := RefreshToken(e.config(), &oauth2.Token{RefreshToken: e.grantRefreshToken()}, OAuth2Options{
		OnToken: func(context.Context, *oauth2.Token) error {
			if calls.Add(1) == 1 {
				return errors.New("disk full")
			}
			return nil
		},
	})
	c := clientFor(&Transport{Credentials: creds, Origins: []string{api.URL}})

	_, err := getStatus(t.Context(), c, api.URL)
	require.ErrorContains(t, err, "OnToken: disk full")
	assert.Zero(t, api.count(), "a token that was not saved is not used")

	status, err := getStatus(t.Context(), c, api.URL)
	require.NoError(t, err, "the next fetch uses the rotated refresh token")
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 2, e.fetches.Load())
	assert.EqualValues(t, 2, e.calls.Load(), "no invalid_grant in between")
}

func TestTokenEndpointFailuresAreTypedErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *tokenEndpoint) Credentials
		status int
		code   string
		final  bool
	}{
		{
			name: "500: may be retried",
			setup: func(e *tokenEndpoint) Credentials {
				e.failWith.Store(500)
				return ClientCredentials(e.clientCredentials(), OAuth2Options{})
			},
			status: 500, code: "server_error",
		},
		{
			name: "429: may be retried",
			setup: func(e *tokenEndpoint) Credentials {
				e.failWith.Store(429)
				return ClientCredentials(e.clientCredentials(), OAuth2Options{})
			},
			status: 429, code: "server_error",
		},
		{
			name: "invalid_client: final",
			setup: func(e *tokenEndpoint) Credentials {
				cfg := e.clientCredentials()
				cfg.ClientSecret = "cs-SENTINEL-wrong"
				return ClientCredentials(cfg, OAuth2Options{})
			},
			status: 401, code: "invalid_client", final: true,
		},
		{
			name: "invalid_grant: final",
			setup: func(e *tokenEndpoint) Credentials {
				return RefreshToken(e.config(), &oauth2.Token{RefreshToken: "rt-SENTINEL-unknown"}, OAuth2Options{})
			},
			status: 400, code: "invalid_grant", final: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, e.resource)
			c := clientFor(&Transport{Credentials: tc.setup(e), Origins: []string{api.URL}})

			_, err := getStatus(t.Context(), c, api.URL)
			require.ErrorIs(t, err, ErrTokenEndpoint)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, tc.status, te.StatusCode)
			assert.Equal(t, tc.code, te.Code)
			assert.Equal(t, tc.final, errors.Is(te, ErrFinal))
			retry, _ := CheckRetry(t.Context(), nil, err)
			assert.Equal(t, !tc.final, retry, "CheckRetry retries exactly the errors that are not final")
			assert.NotContains(t, err.Error(), secretMarker)
			assert.NotContains(t, fmt.Sprintf("%+v", te), secretMarker)
			assert.Zero(t, api.count(), "nothing is sent without a token")
		})
	}
}

func TestNewClientRetriesTokenEndpointOutagesNotRefusals(t *testing.T) {
	tests := []struct {
		name  string
		fail  int32
		calls int64
	}{
		{"500 is retried", 500, 3},
		{"refusal is not", 0, 1}, // wrong secret below: invalid_client
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, nil)
			e.failWith.Store(tc.fail)
			api := newRecorder(t, e.resource)
			cfg := e.clientCredentials()
			if tc.fail == 0 {
				cfg.ClientSecret = "cs-SENTINEL-wrong"
			}
			rc := NewClient(&Transport{Credentials: ClientCredentials(cfg, OAuth2Options{}), Origins: []string{api.URL}})
			rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = 2, time.Millisecond, time.Millisecond
			_, err := rc.Get(api.URL)
			require.ErrorIs(t, err, ErrTokenEndpoint)
			assert.Equal(t, tc.calls, e.calls.Load())
		})
	}
}

// A fetch, once started, is not cancelled by the requests waiting for it:
// it ends when the token arrives or after OAuth2Options.FetchTimeout,
// whichever is first. The requests return on their own contexts.
func TestTokenFetchIsBoundedByFetchTimeoutNotByTheRequests(t *testing.T) {
	t.Run("token endpoint that does not answer", func(t *testing.T) {
		abandoned, stop := make(chan struct{}), make(chan struct{})
		var once sync.Once
		e := newTokenEndpoint(t, func(e *tokenEndpoint) {
			e.hold = func(r *http.Request) {
				select {
				case <-r.Context().Done():
					once.Do(func() { close(abandoned) })
				case <-stop: // the test is over
				}
			}
		})
		t.Cleanup(func() { close(stop) }) // before the endpoint closes
		api := newRecorder(t, e.resource)
		creds := ClientCredentials(e.clientCredentials(), OAuth2Options{FetchTimeout: 50 * time.Millisecond})
		c := clientFor(&Transport{Credentials: creds, Origins: []string{api.URL}})

		// The request would wait far longer; the fetch gives up first.
		ctx, cancel := context.WithTimeout(t.Context(), flightGuard)
		defer cancel()
		_, err := getStatus(ctx, c, api.URL)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, ErrTokenEndpoint)
		require.NoError(t, ctx.Err(), "the fetch's own deadline ended it, not the request's")
		select {
		case <-abandoned: // the token request was cancelled, not left hanging
		case <-time.After(flightGuard):
			t.Fatal("the token request outlived FetchTimeout")
		}
		assert.Zero(t, api.count())
	})

	t.Run("a request that gives up leaves the fetch to the next", func(t *testing.T) {
		arrived, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		e := newTokenEndpoint(t, func(e *tokenEndpoint) {
			e.hold = func(r *http.Request) {
				once.Do(func() { close(arrived) })
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		api := newRecorder(t, e.resource)
		c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), OAuth2Options{}), Origins: []string{api.URL}})

		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-arrived
			cancel()
		}()
		_, err := getStatus(ctx, c, api.URL)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, ErrTokenEndpoint)

		close(release)
		ctx, cancel = context.WithTimeout(t.Context(), flightGuard)
		defer cancel()
		status, err := getStatus(ctx, c, api.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.EqualValues(t, 1, e.calls.Load(), "the token request of the request that gave up serves the next")
	})

	t.Run("source without context finishes in the background", func(t *testing.T) {
		src := &countingSource{release: make(chan struct{})}
		api := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		c := clientFor(&Transport{Credentials: OAuth2(src), Origins: []string{api.URL}})

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := getStatus(ctx, c, api.URL)
		require.ErrorIs(t, err, context.Canceled)

		close(src.release) // the fetch started for the cancelled request completes
		status, err := getStatus(t.Context(), c, api.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.EqualValues(t, 1, src.calls.Load(), "the next request uses the fetch already under way")
	})
}

func TestCachingSourceRefusedTokenIsNotSentAgain(t *testing.T) {
	tok := &oauth2.Token{AccessToken: "at-SENTINEL-cached", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	sources := []struct {
		name string
		src  oauth2.TokenSource
	}{
		{"StaticTokenSource", oauth2.StaticTokenSource(tok)},
		{"ReuseTokenSource", oauth2.ReuseTokenSource(tok, &countingSource{})},
	}
	for _, tc := range sources {
		t.Run(tc.name, func(t *testing.T) {
			api := newRecorder(t, (&tokenEndpoint{valid: map[string]bool{}}).resource) // refuses everything
			c := clientFor(&Transport{Credentials: OAuth2(tc.src), Origins: []string{api.URL}})
			_, err := getStatus(t.Context(), c, api.URL)
			require.ErrorIs(t, err, ErrUnauthorized)
			assert.ErrorIs(t, err, ErrSameCredentials)
			assert.Equal(t, 1, api.count(), "the same token is not sent twice")
			assert.NotContains(t, err.Error(), secretMarker)
		})
	}
}

func TestBearerErrorCodesThatARefreshCannotFix(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  string
		is      []error
		checkFn func(t *testing.T, err error)
	}{
		{
			name: "403 insufficient_scope: forbidden, scope surfaced", status: 403,
			header: `Bearer realm="api", error="insufficient_scope", scope="items:write"`,
			is:     []error{ErrForbidden},
			checkFn: func(t *testing.T, err error) {
				var fe *ForbiddenError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, "items:write", fe.Bearer.Scope)
			},
		},
		{
			name: "401 invalid_request: final", status: 401,
			header: `Bearer realm="api", error="invalid_request"`,
			is:     []error{ErrUnauthorized, ErrInvalidRequest, ErrNoCredentials},
		},
		{
			name: "401 insufficient_scope: final", status: 401,
			header: `Bearer realm="api", error="insufficient_scope", scope="admin"`,
			is:     []error{ErrUnauthorized, ErrNoCredentials},
			checkFn: func(t *testing.T, err error) {
				var ue *UnauthorizedError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, "admin", ue.Bearer.Scope)
			},
		},
		{
			name: "400 invalid_request: final", status: 400,
			header: `Bearer error="invalid_request"`,
			is:     []error{ErrInvalidRequest},
		},
		{
			name: "401 asking for another scheme: not answered", status: 401,
			header: `Basic realm="legacy"`,
			is:     []error{ErrUnauthorized, ErrNoCredentials},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", tc.header)
				w.WriteHeader(tc.status)
			})
			c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), OAuth2Options{}), Origins: []string{api.URL}})
			_, err := getStatus(t.Context(), c, api.URL)
			for _, target := range tc.is {
				assert.ErrorIs(t, err, target)
			}
			assert.Equal(t, 1, api.count(), "no retry")
			assert.EqualValues(t, 1, e.fetches.Load(), "no refresh")
			if tc.checkFn != nil {
				tc.checkFn(t, err)
			}
		})
	}
}

// Step-up and claims challenges, as servers send them.
const (
	stepUpChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="phr mfa", max_age="300"`
	// Azure's continuous access evaluation; claims decodes to claimsJSON.
	claimsChallenge = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwMzc0MjgwMCJ9fX0="`
	claimsJSON      = `{"access_token":{"nbf":{"essential":true, "value":"1603742800"}}}`
)

// stepUpAPI accepts only the tokens in stepped for /sensitive, challenging
// others with challenge, and any token the endpoint issued elsewhere.
func stepUpAPI(t *testing.T, e *tokenEndpoint, stepped *sync.Map, challenge string) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		at := bearerOf(r.Header.Get("Authorization"))
		if _, ok := stepped.Load(at); ok {
			io.WriteString(w, "ok")
			return
		}
		if r.URL.Path == "/sensitive" && e.accepts(at) {
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		e.resource(w, r)
	})
}

func TestStepUpHookAnswersOnceAndTheRetryCarriesItsToken(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		check     func(t *testing.T, ch *StepUpChallenge)
	}{
		{"RFC 9470 step-up", stepUpChallenge, func(t *testing.T, ch *StepUpChallenge) {
			assert.Equal(t, "insufficient_user_authentication", ch.Error)
			assert.Equal(t, []string{"phr", "mfa"}, ch.ACRValues)
			assert.True(t, ch.HasMaxAge)
			assert.Equal(t, 300*time.Second, ch.MaxAge)
			assert.Empty(t, ch.Claims)
		}},
		{"claims challenge", claimsChallenge, func(t *testing.T, ch *StepUpChallenge) {
			assert.Equal(t, "insufficient_claims", ch.Error)
			assert.JSONEq(t, claimsJSON, ch.Claims)
			assert.False(t, ch.HasMaxAge)
			assert.Equal(t, "https://login.microsoftonline.com/common/oauth2/authorize", ch.Challenge.Param("authorization_uri"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20
			var stepped sync.Map
			var armed atomic.Bool
			refused, answering := newRefusalGate(n), newRefusalGate(n)
			e := newTokenEndpoint(t, nil)
			api := stepUpAPI(t, e, &stepped, tc.challenge)
			var hookCalls atomic.Int64
			var got *StepUpChallenge
			creds := ClientCredentials(e.clientCredentials(), OAuth2Options{
				StepUp: func(ctx context.Context, ch *StepUpChallenge) (*oauth2.Token, error) {
					hookCalls.Add(1)
					got = ch
					answering.wait(ctx) // every refusal meets this call
					stepped.Store("at-SENTINEL-mfa", true)
					return &oauth2.Token{AccessToken: "at-SENTINEL-mfa", TokenType: "bearer"}, nil
				},
			})
			// n requests are refused at once, as n goroutines would be.
			tr := &Transport{Credentials: answerCounter{creds, answering.arrive}, Origins: []string{api.URL}, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if armed.Load() && r.Header.Get("Authorization") != "Bearer at-SENTINEL-mfa" {
					refused.arrive()
					refused.wait(r.Context())
				}
				return http.DefaultTransport.RoundTrip(r)
			})}
			c := clientFor(tr)
			status, err := getStatus(t.Context(), c, api.URL+"/public")
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)

			armed.Store(true)
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range n {
				wg.Go(func() {
					if status, err := getStatus(t.Context(), c, api.URL+"/sensitive"); err != nil || status != http.StatusOK {
						failed.Add(1)
					}
				})
			}
			wg.Wait()
			require.Zero(t, failed.Load())
			require.False(t, refused.timedOut.Load() || answering.timedOut.Load())
			assert.EqualValues(t, 1, hookCalls.Load(), "one hook call for %d refusals", n)
			require.NotNil(t, got)
			tc.check(t, got)

			reqs := api.requests()
			assert.Len(t, reqs, 1+2*n, "each request: refused once, retried once")
			retried := 0
			for _, r := range reqs {
				if r.Authorization == "Bearer at-SENTINEL-mfa" {
					retried++
				}
			}
			assert.Equal(t, n, retried, "every retry carries the hook's token")
			assert.EqualValues(t, 1, e.fetches.Load(), "a step-up is not a refresh")
		})
	}
}

func TestStepUpWithoutAnswerCarriesTheChallengeToTheCaller(t *testing.T) {
	decline := func(context.Context, *StepUpChallenge) (*oauth2.Token, error) { return nil, nil }
	tests := []struct {
		name      string
		challenge string
		hook      func(context.Context, *StepUpChallenge) (*oauth2.Token, error)
		check     func(t *testing.T, ue *UnauthorizedError)
	}{
		{"step-up, no hook", stepUpChallenge, nil, func(t *testing.T, ue *UnauthorizedError) {
			assert.Equal(t, "phr mfa", ue.Bearer.ACRValues)
			assert.Equal(t, "300", ue.Bearer.MaxAge)
			assert.ErrorIs(t, ue, ErrStepUpRequired)
		}},
		{"step-up, hook declines", stepUpChallenge, decline, func(t *testing.T, ue *UnauthorizedError) {
			assert.Equal(t, "phr mfa", ue.Bearer.ACRValues)
			assert.ErrorIs(t, ue, ErrStepUpRequired)
		}},
		{"claims, no hook", claimsChallenge, nil, func(t *testing.T, ue *UnauthorizedError) {
			assert.Equal(t, "insufficient_claims", ue.Bearer.Code)
			assert.True(t, strings.HasPrefix(ue.Bearer.Claims, "eyJ"), "the claims as sent, for the application")
			assert.ErrorIs(t, ue, ErrStepUpRequired)
		}},
		{"malformed max_age", `Bearer error="insufficient_user_authentication", max_age="soon"`, decline, func(t *testing.T, ue *UnauthorizedError) {
			assert.ErrorContains(t, ue, "max_age")
			assert.ErrorIs(t, ue, ErrNoCredentials)
		}},
		{"malformed claims", `Bearer error="insufficient_claims", claims="%%%"`, decline, func(t *testing.T, ue *UnauthorizedError) {
			assert.ErrorContains(t, ue, "claims")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stepped sync.Map
			e := newTokenEndpoint(t, nil)
			api := stepUpAPI(t, e, &stepped, tc.challenge)
			var hookCalls atomic.Int64
			opts := OAuth2Options{}
			if tc.hook != nil {
				opts.StepUp = func(ctx context.Context, ch *StepUpChallenge) (*oauth2.Token, error) {
					hookCalls.Add(1)
					return tc.hook(ctx, ch)
				}
			}
			c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), opts), Origins: []string{api.URL}})
			_, err := getStatus(t.Context(), c, api.URL+"/sensitive")
			var ue *UnauthorizedError
			require.ErrorAs(t, err, &ue)
			tc.check(t, ue)
			assert.Equal(t, 1, api.count(), "no retry")
			assert.LessOrEqual(t, hookCalls.Load(), int64(1))
			assert.NotContains(t, err.Error(), secretMarker)

			// The token stays good where no step-up is needed.
			status, err := getStatus(t.Context(), c, api.URL+"/public")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			assert.EqualValues(t, 1, e.fetches.Load())
		})
	}
}

func TestTokensAreReplacedBeforeTheyExpire(t *testing.T) {
	tests := []struct {
		name     string
		skew     time.Duration
		lifetime time.Duration // 0: no expiry
		keep     time.Duration // still used at this age
		replace  time.Duration // replaced at this age
	}{
		{"default skew", 0, time.Hour, time.Hour - DefaultOAuth2Skew - time.Second, time.Hour - DefaultOAuth2Skew},
		{"five minutes", 5 * time.Minute, time.Hour, 55*time.Minute - time.Second, 55 * time.Minute},
		{"negative: at expiry", -1, time.Hour, time.Hour - time.Second, time.Hour},
		{"short-lived: half its life", 0, 20 * time.Second, 10*time.Second - time.Millisecond, 10 * time.Second},
		{"no expiry: only when refused", 0, 0, 100 * 365 * 24 * time.Hour, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			src := &countingSource{lifetime: tc.lifetime, now: clock.Now}
			c := OAuth2WithOptions(src, OAuth2Options{Skew: tc.skew, Now: clock.Now})
			ar := testAuthRequest(t.Context())
			first, err := authorizeValue(c, ar)
			require.NoError(t, err)

			clock.Set(tc.keep)
			v, err := authorizeValue(c, ar)
			require.NoError(t, err)
			assert.Equal(t, first, v)
			assert.EqualValues(t, 1, src.calls.Load())

			if tc.replace < 0 {
				return
			}
			clock.Set(tc.replace)
			v, err = authorizeValue(c, ar)
			require.NoError(t, err)
			assert.NotEqual(t, first, v)
			assert.EqualValues(t, 2, src.calls.Load())
		})
	}
}

func TestOnlyBearerTokensOfVisibleASCIIAreSent(t *testing.T) {
	tests := []struct {
		name      string
		tokenType string
		token     string
		sent      string // "" when refused
		reason    string
	}{
		{"bearer", "bearer", "abc.DEF-123_~+/=", "Bearer abc.DEF-123_~+/=", ""},
		{"BEARER", "BEARER", "abc", "Bearer abc", ""},
		{"no type", "", "abc", "Bearer abc", ""},
		{"DPoP", "DPoP", "abc", "", `type "DPoP"`},
		{"mac", "mac", "abc", "", `type "mac"`},
		{"hostile type", "x\r\ny", "abc", "", "unknown type"},
		{"CRLF in token", "Bearer", "at-SENTINEL\r\nX-Injected: yes", "", "control character"},
		{"space in token", "Bearer", "at-SENTINEL and more", "", "space"},
		{"non-ASCII token", "Bearer", "at-SENTINEL-ü", "", "non-ASCII"},
		{"empty token", "Bearer", "", "", "no access token"},
		{"huge token", "Bearer", strings.Repeat("a", maxAccessToken+1), "", "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tc.token, TokenType: tc.tokenType})
			v, err := authorizeValue(OAuth2(src), testAuthRequest(t.Context()))
			if tc.sent != "" {
				require.NoError(t, err)
				assert.Equal(t, tc.sent, v)
				return
			}
			require.ErrorIs(t, err, ErrTokenEndpoint)
			assert.ErrorContains(t, err, tc.reason)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			assert.True(t, errors.Is(te, ErrFinal), "the endpoint would issue the same kind of token again")
			assert.NotContains(t, err.Error(), secretMarker)
		})
	}

	t.Run("from a token endpoint, nothing reaches the server", func(t *testing.T) {
		e := newTokenEndpoint(t, func(e *tokenEndpoint) { e.accessToken = "at-SENTINEL\r\nX-Injected: yes" })
		api := newRecorder(t, e.resource)
		c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), OAuth2Options{}), Origins: []string{api.URL}})
		_, err := getStatus(t.Context(), c, api.URL)
		require.ErrorIs(t, err, ErrTokenEndpoint)
		assert.Zero(t, api.count())
		assert.NotContains(t, err.Error(), secretMarker)
	})
}

func TestOAuth2BadConfigurationSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		name  string
		creds Credentials
		want  string
	}{
		{"nil source", OAuth2(nil), "oauth2.TokenSource"},
		{"nil client credentials config", ClientCredentials(nil, OAuth2Options{}), "clientcredentials.Config"},
		{"nil config", RefreshToken(nil, &oauth2.Token{RefreshToken: "x"}, OAuth2Options{}), "oauth2.Config"},
		{"no refresh token", RefreshToken(&oauth2.Config{}, &oauth2.Token{AccessToken: "x"}, OAuth2Options{}), "refresh token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := authorizeValue(tc.creds, testAuthRequest(t.Context()))
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNoTokenOrSecretInOAuth2ErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	var events []Event
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	scenarios := []struct {
		name string
		run  func(t *testing.T, tr *Transport) error
	}{
		{"refresh after revocation", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, e.resource)
			tr.Credentials, tr.Origins = ClientCredentials(e.clientCredentials(), OAuth2Options{}), []string{api.URL}
			if _, err := getStatus(t.Context(), clientFor(tr), api.URL); err != nil {
				return err
			}
			e.revokeAll()
			_, err := getStatus(t.Context(), clientFor(tr), api.URL)
			return err
		}},
		{"endpoint echoes the secret", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, nil)
			e.failWith.Store(500)
			api := newRecorder(t, e.resource)
			tr.Credentials, tr.Origins = ClientCredentials(e.clientCredentials(), OAuth2Options{}), []string{api.URL}
			_, err := getStatus(t.Context(), clientFor(tr), api.URL)
			return err
		}},
		{"endpoint echoes the refresh token", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, e.resource)
			tr.Credentials, tr.Origins = RefreshToken(e.config(), &oauth2.Token{RefreshToken: "rt-SENTINEL-revoked"}, OAuth2Options{}), []string{api.URL}
			_, err := getStatus(t.Context(), clientFor(tr), api.URL)
			return err
		}},
		{"refused again after the refresh", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, nil)
			api := newRecorder(t, (&tokenEndpoint{valid: map[string]bool{}}).resource)
			tr.Credentials, tr.Origins = ClientCredentials(e.clientCredentials(), OAuth2Options{}), []string{api.URL}
			_, err := getStatus(t.Context(), clientFor(tr), api.URL)
			return err
		}},
		{"step-up without hook", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, nil)
			api := stepUpAPI(t, e, &sync.Map{}, stepUpChallenge)
			tr.Credentials, tr.Origins = ClientCredentials(e.clientCredentials(), OAuth2Options{}), []string{api.URL}
			_, err := getStatus(t.Context(), clientFor(tr), api.URL+"/sensitive")
			return err
		}},
		{"hostile token", func(t *testing.T, tr *Transport) error {
			e := newTokenEndpoint(t, func(e *tokenEndpoint) { e.accessToken = "at-SENTINEL\nX: y" })
			api := newRecorder(t, e.resource)
			tr.Credentials, tr.Origins = ClientCredentials(e.clientCredentials(), OAuth2Options{}), []string{api.URL}
			_, err := getStatus(t.Context(), clientFor(tr), api.URL)
			return err
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tr := &Transport{Logger: logger, OnEvent: func(e Event) {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}}
			err := sc.run(t, tr)
			if err != nil {
				assert.NotContains(t, err.Error(), secretMarker)
				assert.NotContains(t, fmt.Sprintf("%+v", err), secretMarker)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, events)
	for _, e := range events {
		assert.NotContains(t, fmt.Sprintf("%+v", e), secretMarker)
	}
	require.NotEmpty(t, logs.String())
	assert.NotContains(t, logs.String(), secretMarker)
}

// BenchmarkOAuth2Refresh measures, over loopback, a request with a cached
// token and a request whose token was just revoked (401, fetch, retry), and
// reports the median of each: their difference is what a refresh adds.
func BenchmarkOAuth2Refresh(b *testing.B) {
	for _, revoke := range []bool{false, true} {
		name := "cached"
		if revoke {
			name = "revoked"
		}
		b.Run(name, func(b *testing.B) {
			e := newTokenEndpoint(b, nil)
			api := httptest.NewServer(http.HandlerFunc(e.resource))
			b.Cleanup(api.Close)
			c := clientFor(&Transport{Credentials: ClientCredentials(e.clientCredentials(), OAuth2Options{}), Origins: []string{api.URL}})
			if _, err := getStatus(context.Background(), c, api.URL); err != nil {
				b.Fatal(err)
			}
			var times []time.Duration
			for b.Loop() {
				if revoke {
					e.revokeAll()
				}
				start := time.Now()
				status, err := getStatus(context.Background(), c, api.URL)
				times = append(times, time.Since(start))
				if err != nil || status != http.StatusOK {
					b.Fatal(status, err)
				}
			}
			if revoke && e.fetches.Load() != int64(len(times))+1 {
				b.Fatalf("%d fetches for %d revocations", e.fetches.Load()-1, len(times))
			}
			b.ReportMetric(float64(medianDuration(times).Microseconds()), "median-µs")
		})
	}
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
