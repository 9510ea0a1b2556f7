package reauth_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// Sizes of TestStress. The 20,000 requests take 5 s under -race on two
// cores (15–18 s with another process busy on one of them), so CI runs them
// all; REAUTH_STRESS_REQUESTS sets another count for a longer soak:
//
//	REAUTH_STRESS_REQUESTS=200000 go test -race -run '^TestStress$' .
const (
	stressRequestsDefault = 20_000
	stressWorkers         = 64
	stressFaults          = 40 // revocations and stale nonces, alternately
)

func stressRequests(t *testing.T) int {
	v := os.Getenv("REAUTH_STRESS_REQUESTS")
	if v == "" {
		return stressRequestsDefault
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "REAUTH_STRESS_REQUESTS")
	require.Positive(t, n, "REAUTH_STRESS_REQUESTS")
	return n
}

// TestStress sends many requests from 64 goroutines through clients of
// NewClient (OAuth2 client credentials, Digest, a registry, Basic) to the
// mock server while faults are injected: 503s and 429s at random in front
// of every endpoint (token endpoints included), every access and registry
// token revoked, every Digest nonce made stale. Every call must succeed;
// each revocation must cost exactly one token fetch per credentials (DESIGN.md,
// invariant 6); no Digest nonce count may be sent twice with its nonce; and
// once the clients are closed, no goroutine is left.
//
// The 64 workers share one Digest nonce, so their counts reach the mock in
// any order and any distance apart: the mock tracks each nonce's counts
// exactly and refuses only a count it has seen (Server.DigestReplays), not
// one that is merely late.
//
// A fault is injected while no request is in flight (a write lock that
// requests share as readers), so no request meets two revocations: one
// request may legitimately fail when its retry's token is revoked too.
func TestStress(t *testing.T) {
	n := stressRequests(t)
	before := runtime.NumGoroutine()

	clock := mockserver.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := mockserver.DefaultConfig()
	cfg.Clock = clock
	cfg.OAuth2.AccessTokenLifetime = 0 // tokens end by revocation only
	cfg.Registry.TokenLifetime = 0
	cfg.Digest.NonceLifetime = time.Minute
	mock, err := mockserver.NewUnstarted(cfg)
	require.NoError(t, err)
	var injected503, injected429 atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch x := rand.IntN(100); {
		case x < 2:
			injected503.Add(1)
			w.Header().Set("Retry-After", "0")
			http.Error(w, "injected", http.StatusServiceUnavailable)
		case x < 4:
			injected429.Add(1)
			w.Header().Set("Retry-After", "0")
			http.Error(w, "injected", http.StatusTooManyRequests)
		default:
			mock.Handler().ServeHTTP(w, r)
		}
	}))

	serving := runtime.NumGoroutine() // the server's own, before any connection
	base := &http.Transport{MaxIdleConns: 4 * stressWorkers, MaxIdleConnsPerHost: 4 * stressWorkers}
	frozen := time.Now()
	newClient := func(creds reauth.Credentials) *retryablehttp.Client {
		c := reauth.NewClient(&reauth.Transport{Base: base, Credentials: creds, Origins: []string{srv.URL}})
		// An injected fault is retried at once; eleven in a row, at 4%
		// each, will not happen.
		c.RetryMax = 10
		c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, 5*time.Millisecond
		return c
	}
	scenarios := []struct {
		path   string
		client *retryablehttp.Client
	}{
		{"/oauth2/resource", newClient(reauth.ClientCredentials(&clientcredentials.Config{
			ClientID: "reauth-client", ClientSecret: "reauth-secret", TokenURL: srv.URL + "/oauth2/token",
			Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInHeader,
		}, reauth.OAuth2Options{HTTPClient: &http.Client{Transport: base}}))},
		{"/digest/sha-256/", newClient(reauth.Digest("alice", "wonderland"))},
		// The client's clock stands still: a registry token ends by
		// revocation only, as on the server.
		{"/v2/team/app/tags/list", newClient(reauth.RegistryWithOptions("alice", "wonderland", reauth.RegistryOptions{Now: func() time.Time { return frozen }}))},
		{"/basic/", newClient(reauth.Basic("alice", "wonderland"))},
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	call := func(i int) error {
		sc := scenarios[i%len(scenarios)]
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, srv.URL+sc.path, nil)
		if err != nil {
			return err
		}
		resp, err := sc.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", sc.path, resp.StatusCode)
		}
		return nil
	}

	var (
		gate                sync.RWMutex // requests share it; a fault takes it alone
		revocations, stales int          // guarded by gate (write)
		next                atomic.Int64
		failures            atomic.Int64
		errMu               sync.Mutex
		errs                []string
	)
	faultEvery := int64(max(n/(stressFaults+1), 1))
	inject := func(k int64) {
		gate.Lock()
		defer gate.Unlock()
		if k%2 == 1 {
			clock.Advance(2 * cfg.Digest.NonceLifetime) // every nonce stale
			stales++
			return
		}
		// Revoke only once the last revocation's replacements were
		// fetched, so that the counts below measure one fetch each.
		if mock.TokenGrants() == revocations+1 && mock.RegistryTokenGrants() == revocations+1 {
			mock.RevokeAll()
			revocations++
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range stressWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if i > 0 && i%faultEvery == 0 {
					inject(i / faultEvery)
				}
				gate.RLock()
				err := call(int(i))
				gate.RUnlock()
				if err != nil {
					failures.Add(1)
					errMu.Lock()
					if len(errs) < 5 {
						errs = append(errs, err.Error())
					}
					errMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// One more call per scenario: the last revocation's fetches happen.
	for i := range scenarios {
		if err := call(i); err != nil {
			failures.Add(1)
			errs = append(errs, err.Error())
		}
	}
	t.Logf("%d requests from %d goroutines in %v: %d revocations, %d stale rounds, %d 503s and %d 429s injected",
		n, stressWorkers, time.Since(start).Round(time.Millisecond), revocations, stales, injected503.Load(), injected429.Load())

	assert.Zero(t, failures.Load(), "failed calls, first ones: %v", errs)
	require.Positive(t, revocations, "no revocation was injected")
	require.Positive(t, stales, "no nonce was made stale")
	require.Positive(t, injected503.Load(), "no 503 was injected")
	require.Positive(t, injected429.Load(), "no 429 was injected")
	assert.Equal(t, revocations+1, mock.TokenGrants(), "OAuth2 token fetches: one at the start and one per revocation")
	assert.Equal(t, revocations+1, mock.RegistryTokenGrants(), "registry token fetches: one at the start and one per revocation")
	staleRefusals := 0
	for _, r := range mock.RequestsTo("/digest/") {
		if r.Status == http.StatusUnauthorized {
			staleRefusals++
		}
	}
	assert.GreaterOrEqual(t, staleRefusals, stales, "each stale round refuses at least one Digest request")
	assert.Zero(t, mock.DigestReplays(), "Digest requests refused for a nonce count sent before")

	// Closing the clients' idle connections (through reauth's Transport)
	// ends every goroutine the clients started, and those serving their
	// connections; closing the server ends the rest.
	for _, sc := range scenarios {
		sc.client.HTTPClient.CloseIdleConnections()
	}
	assertGoroutinesReturnTo(t, serving)
	srv.Close()
	mock.Close()
	assertGoroutinesReturnTo(t, before)
}

// assertGoroutinesReturnTo waits, up to a bound, for the number of
// goroutines to fall back to before; goroutines of closed connections take
// a moment to notice.
func assertGoroutinesReturnTo(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if now := runtime.NumGoroutine(); now > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines left running (%d before):\n%s", now-before, before, buf)
	}
}

// closeCounter is a base RoundTripper that counts CloseIdleConnections.
type closeCounter struct {
	http.RoundTripper
	closed atomic.Int32
}

func (c *closeCounter) CloseIdleConnections() { c.closed.Add(1) }

func TestCloseIdleConnectionsReachesTheBase(t *testing.T) {
	base := &closeCounter{RoundTripper: http.DefaultTransport}
	c := reauth.NewClient(&reauth.Transport{Base: base})
	c.HTTPClient.CloseIdleConnections()
	assert.Equal(t, int32(1), base.closed.Load(), "http.Client.CloseIdleConnections did not reach Transport.Base")

	// A base without the method is left alone.
	(&reauth.Transport{Base: roundTripperOnly{}}).CloseIdleConnections()
}

type roundTripperOnly struct{}

func (roundTripperOnly) RoundTrip(*http.Request) (*http.Response, error) { return nil, io.EOF }
