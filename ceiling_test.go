package reauth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// hostile is a server that keeps refusing; it counts what it receives.
type hostile struct {
	mu       sync.Mutex
	requests int
	nonce    int
}

func (h *hostile) next() string {
	h.nonce++
	return fmt.Sprintf("n%d", h.nonce)
}

func digestChallenge(nonce string, stale bool) string {
	c := `Digest realm="hostile", qop="auth", algorithm=SHA-256, nonce="` + nonce + `"`
	if stale {
		c += `, stale=true`
	}
	return c
}

// TestRetryCeiling: whatever a server does, a RoundTrip sends at most
// 1 + 2 requests per leg (one retry per challenge kind and one more for a
// fresh nonce; DESIGN.md, Retry ceiling): 3 for the origin leg alone, 5
// with an authenticating proxy on the way. Counted at the server.
func TestRetryCeiling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		creds   reauth.Credentials
		proxy   reauth.Credentials
		handler func(h *hostile, w http.ResponseWriter, r *http.Request)
		want    int
	}{
		{
			name:  "Digest: a challenge, then stale=true with a new nonce forever",
			creds: reauth.Digest("alice", "pw"),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", digestChallenge(h.next(), r.Header.Get("Authorization") != ""))
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: 3,
		},
		{
			name:  "Digest: a new challenge, not stale, forever",
			creds: reauth.Digest("alice", "pw"),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", digestChallenge(h.next(), false))
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: 2,
		},
		{
			name:  "Basic: challenged forever",
			creds: reauth.Basic("alice", "pw-SENTINEL"),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="hostile"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: 2,
		},
		{
			name:  "OAuth2: every token refused, a new one always on offer",
			creds: reauth.OAuth2(&countingSource{}),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: 2,
		},
		{
			name:  "proxy: 407 with stale=true forever",
			proxy: reauth.Digest("proxy", "pw"),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Proxy-Authenticate", digestChallenge(h.next(), r.Header.Get("Proxy-Authorization") != ""))
				w.WriteHeader(http.StatusProxyAuthRequired)
			},
			want: 3,
		},
		{
			name:  "proxy and origin: each leg spends its whole budget",
			creds: reauth.Digest("alice", "pw"),
			proxy: reauth.Digest("proxy", "pw"),
			handler: func(h *hostile, w http.ResponseWriter, r *http.Request) {
				pa := r.Header.Get("Proxy-Authorization")
				switch {
				case pa == "":
					w.Header().Set("Proxy-Authenticate", digestChallenge("p0", false))
					w.WriteHeader(http.StatusProxyAuthRequired)
				case strings.Contains(pa, `nonce="p0"`):
					w.Header().Set("Proxy-Authenticate", digestChallenge("p1", true))
					w.WriteHeader(http.StatusProxyAuthRequired)
				default: // the proxy lets it through; the origin refuses forever
					w.Header().Set("WWW-Authenticate", digestChallenge(h.next(), r.Header.Get("Authorization") != ""))
					w.WriteHeader(http.StatusUnauthorized)
				}
			},
			want: 5,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hostile{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.requests++
				tc.handler(h, w, r)
			}))
			defer srv.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			tr := &reauth.Transport{Base: base, Credentials: tc.creds, ProxyCredentials: tc.proxy}
			if tc.creds != nil {
				tr.Origins = []string{srv.URL}
			}
			if tc.proxy != nil {
				proxyURL, _ := url.Parse(srv.URL)
				tr.Proxy = http.ProxyURL(proxyURL)
			}
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/x")
			if err == nil {
				resp.Body.Close()
			}
			require.ErrorIs(t, err, reauth.ErrUnauthorized)
			h.mu.Lock()
			defer h.mu.Unlock()
			assert.Equal(t, tc.want, h.requests)
			legs := 0
			if tc.creds != nil {
				legs++
			}
			if tc.proxy != nil {
				legs++
			}
			assert.LessOrEqual(t, h.requests, 1+2*legs, "the retry ceiling")
			reauth.AssertNoSecret(t, "the error", err.Error())
		})
	}
}

// countingSource hands out a new token on every call.
type countingSource struct {
	mu sync.Mutex
	n  int
}

func (s *countingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return &oauth2.Token{AccessToken: fmt.Sprintf("token-SENTINEL-%d", s.n)}, nil
}
