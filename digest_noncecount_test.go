package reauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
)

// A (nonce, nc) pair is never sent twice by one Credentials value (RFC 7616
// §3.4: the server may take a repeated nc for a replay), whatever the order
// of the challenges: these tests use servers that reuse nonces, as servers
// with per-client or time-sliced nonces do, and refuse a repeated pair, as
// Apache's AuthDigestNcCheck and lighttpd do.

var (
	digestNonceParam = regexp.MustCompile(`nonce="([^"]*)"`)
	digestNCParam    = regexp.MustCompile(`nc=([0-9a-fA-F]{8})`)
)

// ncPairs records the (nonce, nc) pairs of Digest credentials seen by one
// server: its own parsing, not reauth's.
type ncPairs struct {
	mu      sync.Mutex
	seen    map[string]bool
	repeats []string
	order   []string
}

// add records the pair of the credentials value v and reports whether it is
// new. A value without nc (no credentials) is not new.
func (p *ncPairs) add(v string) bool {
	nonce, nc := digestNonceParam.FindStringSubmatch(v), digestNCParam.FindStringSubmatch(v)
	if nonce == nil || nc == nil {
		return false
	}
	pair := nonce[1] + " " + nc[1]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.order = append(p.order, pair)
	if p.seen[pair] {
		p.repeats = append(p.repeats, pair)
		return false
	}
	p.seen[pair] = true
	return true
}

func (p *ncPairs) snapshot() (order, repeats []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...), append([]string(nil), p.repeats...)
}

func digestChallengeFor(realm, nonce, extra string) string {
	return fmt.Sprintf(`Digest realm=%q, nonce=%q, qop="auth", algorithm=SHA-256%s`, realm, nonce, extra)
}

func digestGetStatus(ctx context.Context, c *http.Client, target string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestDigestConcurrentFirstRequestsCountOneSharedNonce(t *testing.T) {
	const workers = 16
	var (
		pairs   ncPairs
		arrived = make(chan struct{}, workers)
		release = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		if v == "" {
			// Hold every first request until all have come, so that all
			// are challenged with the one nonce before any is answered.
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second): // hang guard
			}
		}
		if !pairs.add(v) {
			w.Header().Set("WWW-Authenticate", digestChallengeFor("shared", "one-nonce", ""))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	go func() {
		for range workers {
			<-arrived
		}
		close(release)
	}()

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: &reauth.Transport{Base: base, Credentials: reauth.Digest("alice", "pw"), Origins: []string{srv.URL}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, err := digestGetStatus(ctx, c, srv.URL+"/x")
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			results[i] = err
		}()
	}
	wg.Wait()
	for i, err := range results {
		assert.NoError(t, err, "call %d", i)
	}
	order, repeats := pairs.snapshot()
	assert.Empty(t, repeats, "(nonce, nc) pairs sent twice")
	assert.Len(t, order, workers, "one answer per call")
}

func TestDigestRechallengeOutsideDomainContinuesTheCount(t *testing.T) {
	var pairs ncPairs
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !pairs.add(r.Header.Get("Authorization")) {
			// The same nonce for every challenge; the domain covers /a/
			// only, so a request to /b/ is challenged again.
			w.Header().Set("WWW-Authenticate", digestChallengeFor("r", "sliced-nonce", `, domain="/a/"`))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: &reauth.Transport{Base: base, Credentials: reauth.Digest("alice", "pw"), Origins: []string{srv.URL}}}
	ctx := context.Background()
	for _, path := range []string{"/a/1", "/a/2", "/b/1", "/a/3", "/b/2"} {
		status, err := digestGetStatus(ctx, c, srv.URL+path)
		require.NoError(t, err, path)
		assert.Equal(t, http.StatusOK, status, path)
	}
	order, repeats := pairs.snapshot()
	assert.Empty(t, repeats, "(nonce, nc) pairs sent twice")
	assert.Equal(t, []string{
		"sliced-nonce 00000001", "sliced-nonce 00000002", "sliced-nonce 00000003",
		"sliced-nonce 00000004", "sliced-nonce 00000005",
	}, order, "one count per request, the nonce counted on whatever path it comes back")
}

func TestDigestProxyAndOriginLegsNeverRepeatAPair(t *testing.T) {
	// One server is the proxy and the origin behind it, with one realm and
	// one nonce store: one Credentials value answers both legs, so the two
	// legs share the counts of a nonce. The proxy declares its nonce stale
	// the first time a request carries Authorization, so the origin's leg,
	// answered outside its domain, must be answered again for the retry.
	var (
		pairs ncPairs
		mu    sync.Mutex
		proxy = "n1"
		stale bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "requests come through the proxy", http.StatusBadRequest)
			return
		}
		pv, ov := r.Header.Get("Proxy-Authorization"), r.Header.Get("Authorization")
		mu.Lock()
		current, staleNow := proxy, ov != "" && !stale
		if staleNow {
			stale, proxy = true, "n2"
		}
		mu.Unlock()
		switch {
		case staleNow:
			pairs.add(pv)
			w.Header().Set("Proxy-Authenticate", digestChallengeFor("shared", "n2", ", stale=true"))
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		case !pairs.add(pv) || digestNonceParam.FindStringSubmatch(pv)[1] != current:
			w.Header().Set("Proxy-Authenticate", digestChallengeFor("shared", current, ""))
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		case r.URL.Path == "/open":
		case !pairs.add(ov):
			w.Header().Set("WWW-Authenticate", digestChallengeFor("shared", "n1", `, domain="/elsewhere/"`))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	proxyURL, err := url.Parse(srv.URL)
	require.NoError(t, err)
	creds := reauth.Digest("alice", "pw")
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: &reauth.Transport{
		Base: base, Proxy: http.ProxyURL(proxyURL),
		Credentials: creds, ProxyCredentials: creds, Origins: []string{srv.URL},
	}}
	ctx := context.Background()
	for _, path := range []string{"/open", "/x", "/x"} {
		status, err := digestGetStatus(ctx, c, srv.URL+path)
		require.NoError(t, err, path)
		assert.Equal(t, http.StatusOK, status, path)
	}
	_, repeats := pairs.snapshot()
	assert.Empty(t, repeats, "(nonce, nc) pairs sent twice")
}
