package reauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// OAuth2 credentials against the mock's token endpoint (/oauth2/token) and
// resources (/oauth2/resource, /stepup/). The mock's OAuth2 client is
// reauth-client / reauth-secret.

const (
	mockClientID     = "reauth-client"
	mockClientSecret = "reauth-secret"
)

func mockClientCredentials(srv *mockserver.Server, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: mockClientID, ClientSecret: mockClientSecret,
		TokenURL: srv.URL() + "/oauth2/token", Scopes: scopes,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
}

// oauth2Client is an http.Client over a Transport with creds bound to the
// mock, and a base transport of its own that token requests use too.
func oauth2Client(t *testing.T, srv *mockserver.Server, creds func(hc *http.Client) reauth.Credentials) *http.Client {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 256
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: &reauth.Transport{
		Base:        base,
		Credentials: creds(&http.Client{Transport: base}),
		Origins:     []string{srv.URL()},
	}}
}

// getJSON GETs target and decodes a 200's JSON body into a map.
func getJSON(ctx context.Context, c *http.Client, target string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, errors.New(resp.Status)
	}
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// tokenRecorder is an OnToken hook that keeps every token.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens []*oauth2.Token
}

func (r *tokenRecorder) onToken(_ context.Context, tok *oauth2.Token) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, tok)
	return nil
}

func (r *tokenRecorder) last() *oauth2.Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens[len(r.tokens)-1]
}

func (r *tokenRecorder) all() []*oauth2.Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*oauth2.Token(nil), r.tokens...)
}

func TestMockOAuth2RevokedTokenIsReplacedTransparently(t *testing.T) {
	srv := startMock(t)
	var rec tokenRecorder
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(mockClientCredentials(srv, "read"), reauth.OAuth2Options{HTTPClient: hc, OnToken: rec.onToken})
	})
	_, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.NoError(t, err)
	require.Equal(t, 1, srv.TokenGrants())

	require.True(t, srv.RevokeAccessToken(rec.last().AccessToken))
	body, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.NoError(t, err)
	assert.Equal(t, mockClientID, body["client"])
	assert.Equal(t, 2, srv.TokenGrants(), "one fetch for the revoked token")

	res := srv.RequestsTo("/oauth2/resource")
	assert.Equal(t, []int{200, 401, 200}, statuses(res))
	require.Len(t, res, 3)
	assert.Equal(t, res[0].Credential, res[1].Credential, "the revoked token went once")
	assert.NotEqual(t, res[1].Credential, res[2].Credential, "the retry carried the new token")
	assert.Equal(t, []int{200, 200}, statuses(srv.RequestsTo("/oauth2/token")))
}

// DESIGN.md, invariant 6, against the mock: after a revocation, 200 concurrent
// requests get their 401s and share one token fetch.
func TestMockOAuth2ConcurrentRefusalsShareOneFetch(t *testing.T) {
	const n = 200
	srv := startMock(t)
	var rec tokenRecorder
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{HTTPClient: hc, OnToken: rec.onToken})
	})
	_, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.NoError(t, err)
	require.True(t, srv.RevokeAccessToken(rec.last().AccessToken))
	srv.ResetRequests()

	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	assert.Equal(t, 2, srv.TokenGrants(), "exactly one fetch after the revocation")
	assert.Len(t, srv.RequestsTo("/oauth2/token"), 1)
	assert.Len(t, rec.all(), 2)
	res := srv.RequestsTo("/oauth2/resource")
	refused := 0
	for _, r := range res {
		if r.Status == http.StatusUnauthorized {
			refused++
		}
	}
	assert.Equal(t, n, len(res)-refused, "every request succeeded once")
	assert.GreaterOrEqual(t, refused, 1, "the revoked token was still sent, and refused")
	t.Logf("%d requests after a revocation: %d token fetch(es), %d resource requests (%d refused with the revoked token)",
		n, srv.TokenGrants()-1, len(res), refused)
}

// RefreshToken keeps the rotated refresh token and hands each one to
// OnToken, so that a restarted client resumes from the last one saved.
func TestMockOAuth2RotatedRefreshTokenIsPersisted(t *testing.T) {
	srv := startMock(t) // DefaultConfig rotates refresh tokens
	cfg := &oauth2.Config{
		ClientID: mockClientID, ClientSecret: mockClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL() + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	initial, err := cfg.PasswordCredentialsToken(context.Background(), "alice", "wonderland")
	require.NoError(t, err)
	require.NotEmpty(t, initial.RefreshToken)

	var rec tokenRecorder
	start := &oauth2.Token{RefreshToken: initial.RefreshToken}
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.RefreshToken(cfg, start, reauth.OAuth2Options{HTTPClient: hc, OnToken: rec.onToken})
	})
	body, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.NoError(t, err)
	assert.Equal(t, "alice", body["user"])
	require.True(t, srv.RevokeAccessToken(rec.last().AccessToken))
	_, err = getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.NoError(t, err)

	saved := rec.all()
	require.Len(t, saved, 2, "one refresh per request: none held, then the revoked one")
	seen := map[string]bool{initial.RefreshToken: true}
	for _, tok := range saved {
		assert.NotEmpty(t, tok.RefreshToken)
		assert.False(t, seen[tok.RefreshToken], "every refresh rotated the refresh token")
		seen[tok.RefreshToken] = true
	}
	assert.Equal(t, 3, srv.TokenGrants(), "password grant, then two refreshes")

	// A used refresh token is dead; the last one saved is what a restarted
	// client starts from.
	_, err = cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: saved[0].RefreshToken}).Token()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
	restarted := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.RefreshToken(cfg, &oauth2.Token{RefreshToken: rec.last().RefreshToken}, reauth.OAuth2Options{HTTPClient: hc})
	})
	_, err = getJSON(context.Background(), restarted, srv.URL()+"/oauth2/resource")
	assert.NoError(t, err)
}

// A token endpoint that fails, or does not answer before the request's
// deadline, ends the request with a *TokenError; nothing reaches the
// resource.
func TestMockOAuth2TokenEndpointFailureIsATokenError(t *testing.T) {
	tests := []struct {
		name     string
		failure  mockserver.TokenEndpointFailure
		deadline time.Duration // of the request's context; 0 for none
		check    func(t *testing.T, te *reauth.TokenError)
	}{
		{"500", mockserver.TokenEndpointFailure{Status: http.StatusInternalServerError}, 0, func(t *testing.T, te *reauth.TokenError) {
			assert.Equal(t, http.StatusInternalServerError, te.StatusCode)
			assert.Equal(t, "server_error", te.Code)
			assert.False(t, errors.Is(te, reauth.ErrFinal), "a 5xx may be retried")
		}},
		// The endpoint would answer after a minute; the context ends first.
		// Served after its delay, the fetch would succeed and the error would
		// not be a *TokenError at all.
		{"no answer before the deadline", mockserver.TokenEndpointFailure{Delay: time.Minute}, 300 * time.Millisecond, func(t *testing.T, te *reauth.TokenError) {
			assert.ErrorIs(t, te, context.DeadlineExceeded)
			assert.Zero(t, te.StatusCode)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t)
			srv.SetTokenEndpointFailure(tt.failure)
			c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
				return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{HTTPClient: hc})
			})
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			_, err := getJSON(ctx, c, srv.URL()+"/oauth2/resource")
			var te *reauth.TokenError
			require.ErrorAs(t, err, &te)
			assert.ErrorIs(t, err, reauth.ErrTokenEndpoint)
			assert.NotContains(t, err.Error(), mockClientSecret)
			tt.check(t, te)
			assert.Empty(t, srv.RequestsTo("/oauth2/resource"))
			assert.Zero(t, srv.TokenGrants())
		})
	}
}

// A source that hands back the token just refused (the mock replaying it,
// or x/oauth2's ReuseTokenSource cache) gets one request and
// ErrSameCredentials: the refused token is never sent again.
func TestMockOAuth2CachingSourceStopsAtTheRefusedToken(t *testing.T) {
	tests := []struct {
		name   string
		creds  func(srv *mockserver.Server, hc *http.Client) reauth.Credentials
		replay bool
	}{
		{"endpoint replays the token", func(srv *mockserver.Server, hc *http.Client) reauth.Credentials {
			return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{HTTPClient: hc})
		}, true},
		{"oauth2.ReuseTokenSource", func(srv *mockserver.Server, hc *http.Client) reauth.Credentials {
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
			return reauth.OAuth2(oauth2.ReuseTokenSource(nil, mockClientCredentials(srv).TokenSource(ctx)))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t)
			srv.SetTokenReplay(tt.replay)
			c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials { return tt.creds(srv, hc) })
			_, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
			require.NoError(t, err)
			srv.RevokeAll()
			srv.ResetRequests()

			_, err = getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
			var ue *reauth.UnauthorizedError
			require.ErrorAs(t, err, &ue)
			assert.ErrorIs(t, err, reauth.ErrSameCredentials)
			assert.Equal(t, 1, ue.Attempts)
			assert.Equal(t, "invalid_token", ue.Bearer.Code)
			assert.Equal(t, []int{401}, statuses(srv.RequestsTo("/oauth2/resource")), "one request")
		})
	}
}

// 403 with insufficient_scope is final: one request, no token fetch, an
// *ForbiddenError naming the scope.
func TestMockOAuth2InsufficientScopeIsForbidden(t *testing.T) {
	tests := []struct {
		name, path string
		creds      func(srv *mockserver.Server, hc *http.Client) reauth.Credentials
		grants     int
	}{
		{"token of /oauth2/token with scope read", "/oauth2/resource/admin", func(srv *mockserver.Server, hc *http.Client) reauth.Credentials {
			return reauth.ClientCredentials(mockClientCredentials(srv, "read"), reauth.OAuth2Options{HTTPClient: hc})
		}, 1},
		{"static token of /bearer/ with scope read", "/bearer/admin", func(*mockserver.Server, *http.Client) reauth.Credentials {
			return reauth.OAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "mock-token-read"}))
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t)
			c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials { return tt.creds(srv, hc) })
			_, err := getJSON(context.Background(), c, srv.URL()+tt.path)
			var fe *reauth.ForbiddenError
			require.ErrorAs(t, err, &fe)
			assert.ErrorIs(t, err, reauth.ErrForbidden)
			assert.Equal(t, "insufficient_scope", fe.Bearer.Code)
			assert.Equal(t, "admin", fe.Bearer.Scope)
			assert.Equal(t, []int{403}, statuses(srv.RequestsTo(tt.path)), "one request")
			assert.Equal(t, tt.grants, srv.TokenGrants(), "no fetch for the refusal")
		})
	}
}

// RFC 9470 step-up: the hook is called once with what /stepup/ asks for,
// its token (issued with acr_values) is sent with the one retry and then
// kept.
func TestMockOAuth2StepUpHookIsCalledOnce(t *testing.T) {
	srv := startMock(t)
	var calls atomic.Int32
	var asked []string
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{
			HTTPClient: hc,
			StepUp: func(ctx context.Context, ch *reauth.StepUpChallenge) (*oauth2.Token, error) {
				calls.Add(1)
				asked = ch.ACRValues
				cfg := mockClientCredentials(srv)
				cfg.EndpointParams = url.Values{"acr_values": ch.ACRValues}
				return cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
			},
		})
	})
	for range 2 {
		body, err := getJSON(context.Background(), c, srv.URL()+"/stepup/")
		require.NoError(t, err)
		assert.Equal(t, "urn:reauth:mock:mfa", body["acr"])
	}
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, []string{"urn:reauth:mock:mfa"}, asked)
	assert.Equal(t, []int{401, 200, 200}, statuses(srv.RequestsTo("/stepup/")), "one retry, then the stepped-up token up front")
	assert.Equal(t, 2, srv.TokenGrants(), "the first token, then the hook's")
}
