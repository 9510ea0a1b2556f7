package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
	"golang.org/x/oauth2/clientcredentials"
)

// Users and clients of mockserver.DefaultConfig: published test values.
const (
	mockUser     = "alice"
	mockPassword = "wonderland"
	mockToken    = "mock-token-read"
	mockClient   = "reauth-client"
	mockSecret   = "reauth-secret"
)

// mockScheme is one scheme of section 3: credentials and the mock server
// path that checks them.
type mockScheme struct {
	name  string
	path  string
	creds func(srv *mockserver.Server) reauth.Credentials
}

func mockSchemes() []mockScheme {
	return []mockScheme{
		{"Basic", "/basic/", func(*mockserver.Server) reauth.Credentials { return reauth.Basic(mockUser, mockPassword) }},
		{"Bearer", "/bearer/", func(*mockserver.Server) reauth.Credentials { return reauth.Bearer(mockToken) }},
		{"OAuth2 (client credentials)", "/oauth2/resource", func(srv *mockserver.Server) reauth.Credentials {
			return reauth.ClientCredentials(mockClientConfig(srv), reauth.OAuth2Options{})
		}},
		{"Digest (SHA-512-256, qop=auth)", "/digest/strongest/", func(*mockserver.Server) reauth.Credentials { return reauth.Digest(mockUser, mockPassword) }},
	}
}

func mockClientConfig(srv *mockserver.Server) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: mockClient, ClientSecret: mockSecret, TokenURL: srv.URL() + "/oauth2/token", Scopes: []string{"read"}}
}

// runRoundTrips is section 3.
func runRoundTrips(cfg *config) ([]*table, []verdict, error) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()
	calls := 400
	if cfg.quick {
		calls = 60
	}
	t := &table{header: []string{"scheme", "first call: requests", "clients", "calls", "requests at the server", "per call", "token fetches"}}
	t.note("Against the bundled mock server, which checks every credential; requests counted from its log, after the first call.")
	t.note("Target: 1.00 request per call in steady state for every scheme.")
	var verdicts []verdict
	for _, s := range mockSchemes() {
		base := newBase()
		c := &http.Client{Timeout: 30 * time.Second, Transport: &reauth.Transport{
			Base: base, Credentials: s.creds(srv), Origins: []string{srv.URL()},
		}}
		get := httpGetter(c, srv.URL()+s.path, "")
		srv.ResetRequests()
		if err := get(context.Background()); err != nil {
			return nil, nil, fmt.Errorf("%s: first call: %w", s.name, err)
		}
		first := len(srv.RequestsTo(s.path))
		worst := 0.0
		for _, conc := range []int{1, 16} {
			srv.ResetRequests()
			if err := parallelCalls(get, conc, calls); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", s.name, err)
			}
			served := len(srv.RequestsTo(s.path))
			fetches := len(srv.RequestsTo("/oauth2/token"))
			per := float64(served) / float64(calls)
			worst = max(worst, per)
			t.add(s.name, fmt.Sprint(first), fmt.Sprint(conc), fmt.Sprint(calls), fmt.Sprint(served), fmt.Sprintf("%.2f", per), fmt.Sprint(fetches))
		}
		base.CloseIdleConnections()
		verdicts = append(verdicts, verdict{
			target: fmt.Sprintf("%s: 1.00 request per call after the first challenge", strings.SplitN(s.name, " ", 2)[0]),
			result: fmt.Sprintf("%.2f", worst),
			met:    worst == 1,
		})
	}
	return []*table{t}, verdicts, nil
}

// parallelCalls makes n calls of get from conc goroutines.
func parallelCalls(get func(context.Context) error, conc, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := get(ctx); err != nil {
					mu.Lock()
					if errs == nil {
						errs = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs
}
