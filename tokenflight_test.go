package reauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// flightGuard bounds how long a test waits for something that a broken
// implementation never does, so that the test fails instead of hanging.
const flightGuard = 10 * time.Second

// A refresh whose only request gives up after the endpoint has rotated the
// refresh token is completed all the same: the rotated token is cached and
// handed to OnToken, and the next request does not present the retired one
// (which a provider with reuse detection answers with invalid_grant, for
// good).
func TestCancelledRefreshKeepsTheRotatedRefreshToken(t *testing.T) {
	granted, answer := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := newTokenEndpoint(t, func(e *tokenEndpoint) {
		e.rotate = true
		e.afterGrant = func(*http.Request) {
			once.Do(func() { close(granted) })
			select {
			case <-answer:
			case <-time.After(flightGuard):
			}
		}
	})
	api := newRecorder(t, e.resource)
	start := e.grantRefreshToken()
	var mu sync.Mutex
	var saved []string
	creds := RefreshToken(e.config(), &oauth2.Token{RefreshToken: start}, OAuth2Options{
		OnToken: func(_ context.Context, tok *oauth2.Token) error {
			mu.Lock()
			defer mu.Unlock()
			saved = append(saved, tok.RefreshToken)
			return nil
		},
	})
	c := clientFor(&Transport{Credentials: creds, Origins: []string{api.URL}})

	// The request's deadline ends once the endpoint has rotated the refresh
	// token, before its answer arrives.
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-granted:
		case <-time.After(flightGuard):
		}
		cancel()
	}()
	_, err := getStatus(ctx, c, api.URL)
	require.ErrorIs(t, err, context.Canceled, "the request returns on its own context")
	close(answer)

	ctx, cancel = context.WithTimeout(t.Context(), flightGuard)
	defer cancel()
	status, err := getStatus(ctx, c, api.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 1, e.calls.Load(), "one refresh, whose answer is used: no second grant, no invalid_grant")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, saved, 1, "OnToken sees the token although nobody waited for it")
	assert.True(t, e.acceptsRefresh(saved[0]), "the refresh token saved is the one the endpoint honours")
	assert.False(t, e.acceptsRefresh(start))
}

// stepUpSource is an OAuth2WithOptions source and StepUp hook whose calls
// the test controls: source call n returns "plainN", the first at once and
// each later one when release yields a value; the hook tells hookCalled and
// answers once stepRelease is closed (stepErr, else "stepped").
type stepUpSource struct {
	calls       atomic.Int64
	started     chan int64 // source call n has started
	release     chan struct{}
	hookCalled  chan struct{}
	stepRelease chan struct{}
	stepErr     error
	expiry      time.Time // of the source's tokens; zero: none
}

func newStepUpSource() *stepUpSource {
	return &stepUpSource{started: make(chan int64, 8), release: make(chan struct{}, 8), hookCalled: make(chan struct{}, 8), stepRelease: make(chan struct{})}
}

func (s *stepUpSource) Token() (*oauth2.Token, error) {
	n := s.calls.Add(1)
	s.started <- n
	if n > 1 {
		<-s.release
	}
	return &oauth2.Token{AccessToken: fmt.Sprint("plain", n), Expiry: s.expiry}, nil
}

func (s *stepUpSource) stepUp(ctx context.Context, _ *StepUpChallenge) (*oauth2.Token, error) {
	s.hookCalled <- struct{}{}
	select {
	case <-s.stepRelease:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.stepErr != nil {
		return nil, s.stepErr
	}
	return &oauth2.Token{AccessToken: "stepped"}, nil
}

// stepUpRefusal is a 401 with an RFC 9470 challenge for sent.
func stepUpRefusal(string) *Refusal {
	chs, _ := ParseChallenges(stepUpChallenge)
	return &Refusal{StatusCode: http.StatusUnauthorized, Challenges: chs}
}

// Step-up and routine refresh are different flights: a request whose token
// is only due for replacement does not wait for a user's login, nor fail
// with the StepUp hook's error.
func TestRoutineRefreshDoesNotJoinAStepUp(t *testing.T) {
	clock := newFakeClock()
	src := newStepUpSource()
	src.stepErr = errors.New("the user closed the login window")
	src.expiry = clock.Now().Add(time.Hour)
	c := OAuth2WithOptions(src, OAuth2Options{StepUp: src.stepUp, Now: clock.Now})
	ar := testAuthRequest(t.Context())
	plain, err := authorizeValue(c, ar)
	require.NoError(t, err)
	<-src.started

	stepped := make(chan error, 1)
	go func() {
		_, err := answerValue(c, ar, plain, stepUpRefusal(plain))
		stepped <- err
	}()
	<-src.hookCalled // the user is logging in

	clock.Set(time.Hour) // the plain token is due for replacement
	src.release <- struct{}{}
	ctx, cancel := context.WithTimeout(t.Context(), flightGuard)
	defer cancel()
	next, err := authorizeValue(c, testAuthRequest(ctx))
	require.NoError(t, err, "a routine refresh does not inherit the step-up's fate")
	assert.Equal(t, "Bearer plain2", next)

	close(src.stepRelease)
	assert.ErrorContains(t, <-stepped, "closed the login window")
}

// A step-up challenge is answered by the StepUp hook, never by a plain token
// that a refresh brings meanwhile: the challenge's one retry would be spent
// on a token that the server refuses again for the same reason.
func TestStepUpIsNotAnsweredWithAPlainToken(t *testing.T) {
	t.Run("a refresh is running", func(t *testing.T) {
		src := newStepUpSource()
		c := OAuth2WithOptions(src, OAuth2Options{StepUp: src.stepUp})
		ar := testAuthRequest(t.Context())
		plain, err := authorizeValue(c, ar)
		require.NoError(t, err)
		<-src.started

		refreshed := make(chan string, 1)
		go func() { // another request's token was refused: a refresh
			v, _ := answerValue(c, testAuthRequest(t.Context()), plain, &Refusal{StatusCode: http.StatusUnauthorized})
			refreshed <- v
		}()
		<-src.started
		go func() { // let the refresh go only when the hook was called, or never
			select {
			case <-src.hookCalled:
			case <-time.After(flightGuard):
			}
			close(src.stepRelease)
			src.release <- struct{}{}
		}()
		v, err := answerValue(c, ar, plain, stepUpRefusal(plain))
		require.NoError(t, err)
		assert.Equal(t, "Bearer stepped", v)
		assert.Equal(t, "Bearer plain2", <-refreshed)

		next, err := authorizeValue(c, testAuthRequest(t.Context())) // the next request
		require.NoError(t, err)
		assert.Equal(t, "Bearer stepped", next, "the refresh that started before the step-up does not replace its token")
	})

	t.Run("a refresh has replaced the refused token", func(t *testing.T) {
		src := newStepUpSource()
		c := OAuth2WithOptions(src, OAuth2Options{StepUp: src.stepUp})
		ar := testAuthRequest(t.Context())
		plain, err := authorizeValue(c, ar)
		require.NoError(t, err)
		src.release <- struct{}{}
		fresh, err := answerValue(c, ar, plain, &Refusal{StatusCode: http.StatusUnauthorized})
		require.NoError(t, err)
		require.Equal(t, "Bearer plain2", fresh)

		close(src.stepRelease)
		v, err := answerValue(c, ar, plain, stepUpRefusal(plain))
		require.NoError(t, err)
		assert.Equal(t, "Bearer stepped", v)
		assert.Len(t, src.hookCalled, 1)
	})
}

// A plain oauth2.TokenSource takes no context, so a fetch from one that
// hangs cannot be stopped. It is joined while it is younger than
// FetchTimeout; after that the next request starts a new fetch instead of
// waiting for it. If the hung fetch ever returns, OnToken sees its token,
// and the newer token stays in use.
func TestHungTokenSourceIsNotJoinedAfterFetchTimeout(t *testing.T) {
	clock := newFakeClock()
	hung, unhang := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	src := tokenSourceFunc(func() (*oauth2.Token, error) {
		n := calls.Add(1)
		if n == 1 {
			close(hung)
			<-unhang
		}
		return &oauth2.Token{AccessToken: fmt.Sprint("tok", n)}, nil
	})
	saved := make(chan string, 4)
	c := OAuth2WithOptions(src, OAuth2Options{FetchTimeout: time.Minute, Now: clock.Now, OnToken: func(_ context.Context, tok *oauth2.Token) error {
		saved <- tok.AccessToken
		return nil
	}}).(*oauth2Credentials)
	released := false
	t.Cleanup(func() {
		if !released {
			close(unhang)
		}
	})

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-hung
		cancel()
	}()
	_, err := authorizeValue(c, testAuthRequest(ctx))
	require.ErrorIs(t, err, context.Canceled, "the request returns on its own context")
	c.mu.Lock()
	first := c.refreshing
	c.mu.Unlock()
	require.NotNil(t, first)

	// Younger than FetchTimeout: joined, not started again.
	clock.Set(time.Minute - time.Second)
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = authorizeValue(c, testAuthRequest(ended))
	require.ErrorIs(t, err, context.Canceled)
	c.mu.Lock()
	assert.Same(t, first, c.refreshing, "a fetch younger than FetchTimeout is joined")
	c.mu.Unlock()

	// As old as FetchTimeout: a new fetch, which answers.
	clock.Set(time.Minute)
	ctx, cancel = context.WithTimeout(t.Context(), flightGuard)
	defer cancel()
	v, err := authorizeValue(c, testAuthRequest(ctx))
	require.NoError(t, err, "a hung fetch does not wedge the credentials")
	assert.Equal(t, "Bearer tok2", v)
	assert.Equal(t, "tok2", <-saved)

	released = true
	close(unhang)
	select {
	case tok := <-saved:
		assert.Equal(t, "tok1", tok, "OnToken sees the late token too")
	case <-time.After(flightGuard):
		t.Fatal("the hung fetch's token never reached OnToken")
	}
	<-first.done
	v, err = authorizeValue(c, testAuthRequest(ctx))
	require.NoError(t, err)
	assert.Equal(t, "Bearer tok2", v, "the late token does not replace the newer one")
	assert.EqualValues(t, 2, calls.Load())
}

// Token requests go through OAuth2Options.HTTPClient when it is set, else
// through the Transport's Base; never through http.DefaultClient. The
// StepUp hook's context carries the same client for its own exchange.
func TestTokenRequestsGoThroughBaseOrHTTPClient(t *testing.T) {
	type counts struct{ base, client atomic.Int64 }
	counting := func(n *atomic.Int64) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/token" {
				n.Add(1)
			}
			return http.DefaultTransport.RoundTrip(r)
		})
	}
	tests := []struct {
		name       string
		creds      func(e *tokenEndpoint, hc *http.Client) Credentials
		path       string
		withClient bool // else through Base
	}{
		{"ClientCredentials, Base", func(e *tokenEndpoint, _ *http.Client) Credentials {
			return ClientCredentials(e.clientCredentials(), OAuth2Options{})
		}, "/", false},
		{"ClientCredentials, HTTPClient", func(e *tokenEndpoint, hc *http.Client) Credentials {
			return ClientCredentials(e.clientCredentials(), OAuth2Options{HTTPClient: hc})
		}, "/", true},
		{"RefreshToken, Base", func(e *tokenEndpoint, _ *http.Client) Credentials {
			return RefreshToken(e.config(), &oauth2.Token{RefreshToken: e.grantRefreshToken()}, OAuth2Options{})
		}, "/", false},
		{"RefreshToken, HTTPClient", func(e *tokenEndpoint, hc *http.Client) Credentials {
			return RefreshToken(e.config(), &oauth2.Token{RefreshToken: e.grantRefreshToken()}, OAuth2Options{HTTPClient: hc})
		}, "/", true},
		{"StepUp hook's exchange, Base", func(e *tokenEndpoint, _ *http.Client) Credentials {
			return ClientCredentials(e.clientCredentials(), OAuth2Options{StepUp: stepUpWithContextClient(e)})
		}, "/sensitive", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n counts
			var stepped sync.Map
			e := newTokenEndpoint(t, nil)
			api := stepUpAPI(t, e, &stepped, stepUpChallenge)
			creds := storeStepped{tt.creds(e, &http.Client{Transport: counting(&n.client)}), &stepped}
			c := clientFor(&Transport{Base: counting(&n.base), Credentials: creds, Origins: []string{api.URL}})
			status, err := getStatus(t.Context(), c, api.URL+tt.path)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			fetches := e.calls.Load()
			require.NotZero(t, fetches)
			if tt.withClient {
				assert.Equal(t, fetches, n.client.Load(), "token requests through HTTPClient")
				assert.Zero(t, n.base.Load())
			} else {
				assert.Equal(t, fetches, n.base.Load(), "token requests through the Transport's Base")
				assert.Zero(t, n.client.Load())
			}
		})
	}
}

// stepUpWithContextClient is a StepUp hook that obtains its token with an
// x/oauth2 exchange on the context it is given, as a real hook would.
func stepUpWithContextClient(e *tokenEndpoint) func(ctx context.Context, _ *StepUpChallenge) (*oauth2.Token, error) {
	return func(ctx context.Context, _ *StepUpChallenge) (*oauth2.Token, error) {
		if _, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); !ok {
			return nil, errors.New("the hook's context carries no oauth2.HTTPClient")
		}
		return e.clientCredentials().Token(ctx)
	}
}

// storeStepped tells stepUpAPI to accept the tokens the credentials answer a
// step-up challenge with.
type storeStepped struct {
	Credentials
	stepped *sync.Map
}

func (s storeStepped) Refused(r *AuthRequest, refusal *Refusal) (Retry, error) {
	want, err := s.Credentials.Refused(r, refusal)
	if ch, _ := bearerChallenge(refusal.Challenges); err == nil && want != 0 && ch.Param("error") == errInsufficientUserAuthentication {
		if v, ok := r.State.(string); ok {
			s.stepped.Store(bearerOf(v), true)
		}
	}
	return want, err
}
