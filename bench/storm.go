package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
	"golang.org/x/oauth2"
)

// burst starts n GETs at once and returns the latency of each, from the
// common start to the end of its body.
func burst(get func(context.Context) error, n int) ([]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		lat   = make([]float64, n)
		errs  = make([]error, n)
		t0    time.Time
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = get(ctx)
			lat[i] = float64(time.Since(t0))
		}()
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// runStorm is section 4.
func runStorm(cfg *config) ([]*table, []verdict, error) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()

	var current atomic.Value // the access token in use, learnt through OnToken
	creds := reauth.ClientCredentials(mockClientConfig(srv), reauth.OAuth2Options{
		OnToken: func(_ context.Context, tok *oauth2.Token) error {
			current.Store(tok.AccessToken)
			return nil
		},
	})
	base := newBase()
	defer base.CloseIdleConnections()
	c := &http.Client{Timeout: time.Minute, Transport: &reauth.Transport{Base: base, Credentials: creds, Origins: []string{srv.URL()}}}
	get := httpGetter(c, srv.URL()+"/oauth2/resource", "")

	t := &table{header: []string{"concurrent requests", "fetches per revocation", "p50 cached", "p50 revoked", "p50 added", "p99 cached", "p99 revoked", "p99 added"}}
	t.note("Each pair: the burst with the token cached (A), then the token revoked at the server and the same burst (B): every request gets 401, the token is fetched, the request retried.")
	t.note("Latency from the common start to the end of each response; medians over %d pairs. Fetches: fewest–most token requests per revocation over the pairs.", cfg.benchPairs)
	t.note("Target: exactly one fetch per revocation at every level.")
	var verdicts []verdict
	for _, n := range cfg.storm {
		// Warm up: the token and n connections.
		for range 2 {
			if _, err := burst(get, n); err != nil {
				return nil, nil, fmt.Errorf("%d concurrent: warm-up: %w", n, err)
			}
		}
		var (
			p50a, p50b, p99a, p99b, add50, add99 []float64
			fewest, most                         = -1, 0
		)
		for range cfg.benchPairs {
			srv.ResetRequests()
			la, err := burst(get, n)
			if err != nil {
				return nil, nil, fmt.Errorf("%d concurrent, cached: %w", n, err)
			}
			tok, _ := current.Load().(string)
			if !srv.RevokeAccessToken(tok) {
				return nil, nil, fmt.Errorf("%d concurrent: the token in use was not live at the server", n)
			}
			before := srv.TokenGrants()
			lb, err := burst(get, n)
			if err != nil {
				return nil, nil, fmt.Errorf("%d concurrent, revoked: %w", n, err)
			}
			fetches := srv.TokenGrants() - before
			if fewest < 0 || fetches < fewest {
				fewest = fetches
			}
			most = max(most, fetches)
			a50, b50, a99, b99 := percentile(la, 50), percentile(lb, 50), percentile(la, 99), percentile(lb, 99)
			p50a, p50b, p99a, p99b = append(p50a, a50), append(p50b, b50), append(p99a, a99), append(p99b, b99)
			add50, add99 = append(add50, b50-a50), append(add99, b99-a99)
		}
		fetchText := fmt.Sprint(fewest)
		if most != fewest {
			fetchText = fmt.Sprintf("%d–%d", fewest, most)
		}
		t.add(fmt.Sprint(n), fetchText, fmtNs(median(p50a)), fmtNs(median(p50b)), fmtNs(median(add50)),
			fmtNs(median(p99a)), fmtNs(median(p99b)), fmtNs(median(add99)))
		verdicts = append(verdicts, verdict{
			target: fmt.Sprintf("refresh storm, %d concurrent: exactly 1 token fetch per revocation", n),
			result: fetchText,
			met:    fewest == 1 && most == 1,
		})
	}
	return []*table{t}, verdicts, nil
}
