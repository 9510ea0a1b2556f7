package reauth_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// The mock server as a forward proxy (mockserver.ProxyConfig): plain-http
// requests answered with Transport.ProxyCredentials, CONNECT with
// ConfigureProxy. Its users are alice/wonderland and bob/builder.

// startMockProxy starts the mock with its forward proxy challenging for
// scheme, and returns it with its URL as a proxy URL.
func startMockProxy(t *testing.T, scheme string) (*mockserver.Server, *url.URL) {
	t.Helper()
	srv := startMock(t, func(c *mockserver.Config) {
		c.Proxy = mockserver.ProxyConfig{Enabled: true, Schemes: []string{scheme}}
	})
	pu, err := url.Parse(srv.URL())
	require.NoError(t, err)
	return srv, pu
}

func proxyCredentials(scheme, user, password string) reauth.Credentials {
	if scheme == "Digest" {
		return reauth.Digest(user, password)
	}
	return reauth.Basic(user, password)
}

// proxiedBase is a base transport that sends every request through the
// proxy at pu; Transport.Proxy is left nil so that reauth reads it from
// there. (Go's default ProxyFromEnvironment never proxies loopback.)
func proxiedBase(t *testing.T, pu *url.URL) *http.Transport {
	t.Helper()
	ht := http.DefaultTransport.(*http.Transport).Clone()
	ht.Proxy = http.ProxyURL(pu)
	t.Cleanup(ht.CloseIdleConnections)
	return ht
}

func getStatus(t *testing.T, c *http.Client, target string) (int, error) {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, nil
}

// A 407 is answered once with the proxy credentials; from then on they go
// with every request (Basic the same value, Digest the next nonce count),
// so the steady state is one request.
func TestMockProxyPlainHTTPAnswers407(t *testing.T) {
	for _, scheme := range []string{"Basic", "Digest"} {
		t.Run(scheme, func(t *testing.T) {
			srv, pu := startMockProxy(t, scheme)
			c := &http.Client{Transport: &reauth.Transport{
				Base:             proxiedBase(t, pu),
				ProxyCredentials: proxyCredentials(scheme, "alice", "wonderland"),
			}}
			// The mock's listing needs no credentials: the origin here is
			// the mock itself, reached through its own proxy.
			status, err := getStatus(t, c, srv.URL()+"/")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			status, err = getStatus(t, c, srv.URL()+"/")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)

			p := srv.ProxyRequests()
			assert.Equal(t, []int{407, 200, 200}, statuses(p), "407 → retry → 200, then one request")
			require.Len(t, p, 3)
			assert.Empty(t, p[0].ProxyScheme, "nothing before the proxy's challenge")
			assert.Equal(t, scheme, p[1].ProxyScheme)
			assert.Equal(t, scheme, p[2].ProxyScheme)
			for _, r := range srv.RequestsTo("/") {
				assert.Empty(t, r.ProxyCredential, "the origin never sees Proxy-Authorization")
			}
			assert.Len(t, srv.RequestsTo("/"), 2)
		})
	}
}

func TestMockProxyWrongPasswordIsRefusedAfterOneRetry(t *testing.T) {
	for _, scheme := range []string{"Basic", "Digest"} {
		t.Run(scheme, func(t *testing.T) {
			srv, pu := startMockProxy(t, scheme)
			c := &http.Client{Transport: &reauth.Transport{
				Base:             proxiedBase(t, pu),
				ProxyCredentials: proxyCredentials(scheme, "alice", "not-wonderland"),
			}}
			_, err := getStatus(t, c, srv.URL()+"/")
			var ue *reauth.UnauthorizedError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, http.StatusProxyAuthRequired, ue.StatusCode)
			assert.Equal(t, 2, ue.Attempts)
			assert.ErrorIs(t, err, reauth.ErrRefusedAfterRetry)
			assert.NotContains(t, err.Error(), "not-wonderland")
			assert.Equal(t, []int{407, 407}, statuses(srv.ProxyRequests()))
			assert.Empty(t, srv.RequestsTo("/"), "nothing reached the origin")
		})
	}
}

// The proxy leg and the origin leg each have their one retry: 407, then
// 401 from the origin behind the proxy, then 200.
func TestMockProxyThenOriginChallengeTakesThreeRequests(t *testing.T) {
	srv, pu := startMockProxy(t, "Basic")
	c := &http.Client{Transport: &reauth.Transport{
		Base:             proxiedBase(t, pu),
		ProxyCredentials: reauth.Basic("alice", "wonderland"),
		Credentials:      reauth.Basic("bob", "builder"),
		Origins:          []string{srv.URL()},
	}}
	resp, err := c.Get(srv.URL() + "/basic/")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct{ User string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "bob", body.User, "the origin took the origin's credentials")

	p := srv.ProxyRequests()
	assert.Equal(t, []int{407, 401, 200}, statuses(p), "three requests, no more")
	require.Len(t, p, 3)
	assert.Equal(t, []string{"", "Basic", "Basic"}, []string{p[0].ProxyScheme, p[1].ProxyScheme, p[2].ProxyScheme})
	assert.Equal(t, []string{"", "", "Basic"}, []string{p[0].Scheme, p[1].Scheme, p[2].Scheme})
	assert.NotEqual(t, p[2].ProxyCredential, p[2].Credential, "the proxy and the origin each got their own user")
	origin := srv.RequestsTo("/basic/")
	assert.Equal(t, []int{401, 200}, statuses(origin))
	for _, r := range origin {
		assert.Empty(t, r.ProxyCredential)
	}
}

// tlsOrigin is an https origin on loopback that wants Basic bob/builder and
// records the fields it receives.
type tlsOrigin struct {
	*httptest.Server
	mu                   sync.Mutex
	authorization, proxy []string // Authorization and Proxy-Authorization of each request
}

func newTLSOrigin(t *testing.T) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	o.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.authorization = append(o.authorization, r.Header.Get("Authorization"))
		o.proxy = append(o.proxy, r.Header.Get("Proxy-Authorization"))
		o.mu.Unlock()
		if user, password, ok := r.BasicAuth(); !ok || user != "bob" || password != "builder" {
			w.Header().Set("WWW-Authenticate", `Basic realm="origin"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "hello through the tunnel")
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *tlsOrigin) seen() (authorization, proxy []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.authorization), slices.Clone(o.proxy)
}

// viaMockProxy is an http.Transport that trusts o's certificate and reaches
// it through the mock proxy, with ConfigureProxy(creds).
func viaMockProxy(t *testing.T, o *tlsOrigin, pu *url.URL, creds reauth.Credentials) *http.Transport {
	t.Helper()
	ht := o.Client().Transport.(*http.Transport).Clone()
	ht.Proxy = http.ProxyURL(pu)
	reauth.ConfigureProxy(ht, creds)
	t.Cleanup(ht.CloseIdleConnections)
	return ht
}

// An https origin through the mock proxy: Basic goes with the first
// CONNECT; Digest learns its nonce from the CONNECT's 407 and retries once.
// The proxy credentials stay on the CONNECT and the origin's inside the
// tunnel.
func TestMockProxyCONNECTToHTTPSOrigin(t *testing.T) {
	tests := []struct {
		scheme   string
		connects []int // status of each CONNECT
	}{
		{"Basic", []int{200}},
		{"Digest", []int{407, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			srv, pu := startMockProxy(t, tt.scheme)
			origin := newTLSOrigin(t)
			c := &http.Client{Transport: &reauth.Transport{
				Base:        viaMockProxy(t, origin, pu, proxyCredentials(tt.scheme, "alice", "wonderland")),
				Credentials: reauth.Basic("bob", "builder"),
				Origins:     []string{origin.URL},
			}}
			for range 2 {
				resp, err := c.Get(origin.URL + "/x")
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "hello through the tunnel", string(b))
			}

			p := srv.ProxyRequests()
			assert.Equal(t, tt.connects, statuses(p), "the tunnel is opened once and kept")
			for _, r := range p {
				assert.Equal(t, http.MethodConnect, r.Method)
				assert.Equal(t, origin.Listener.Addr().String(), r.Target)
				assert.Empty(t, r.Credential, "the proxy never sees the origin's Authorization")
			}
			assert.Equal(t, tt.scheme, p[len(p)-1].ProxyScheme)
			authorization, proxy := origin.seen()
			assert.Equal(t, []string{"", "", ""}, proxy, "the origin never sees Proxy-Authorization")
			require.Len(t, authorization, 3, "401, then 200 twice (Basic up front once challenged)")
			assert.Empty(t, authorization[0])
			assert.NotEmpty(t, authorization[2])
		})
	}
}

func TestMockProxyCONNECTRefusalIsAnUnauthorizedError(t *testing.T) {
	tests := []struct {
		scheme   string
		reason   error
		connects []int
	}{
		// Basic goes up front; its only answer is the value refused.
		{"Basic", reauth.ErrSameCredentials, []int{407}},
		// Digest answers the first 407; the second is final.
		{"Digest", reauth.ErrRefusedAfterRetry, []int{407, 407}},
	}
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			srv, pu := startMockProxy(t, tt.scheme)
			origin := newTLSOrigin(t)
			c := &http.Client{Transport: &reauth.Transport{
				Base: viaMockProxy(t, origin, pu, proxyCredentials(tt.scheme, "alice", "not-wonderland")),
			}}
			_, err := c.Get(origin.URL + "/")
			var pe *reauth.UnauthorizedError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, http.StatusProxyAuthRequired, pe.StatusCode)
			assert.Equal(t, http.MethodConnect, pe.Method)
			assert.Equal(t, origin.Listener.Addr().String(), pe.URL)
			assert.Equal(t, len(tt.connects), pe.Attempts)
			assert.True(t, errors.Is(err, reauth.ErrUnauthorized))
			assert.ErrorIs(t, err, tt.reason)
			assert.NotContains(t, err.Error(), "not-wonderland")
			assert.Equal(t, tt.connects, statuses(srv.ProxyRequests()))
			authorization, _ := origin.seen()
			assert.Empty(t, authorization, "nothing reached the origin")
		})
	}
}

// With an *http.Transport Base, ProxyCredentials alone answer the CONNECT
// of https requests too: no ConfigureProxy. Calling ConfigureProxy on that
// Base as well changes nothing (the CONNECT is answered once).
func TestMockProxyCredentialsAloneCoverCONNECT(t *testing.T) {
	tests := []struct {
		scheme    string
		configure bool // ConfigureProxy on Base as well
		connects  []int
	}{
		{"Basic", false, []int{200}},
		{"Digest", false, []int{407, 200}},
		{"Digest", true, []int{407, 200}},
	}
	for _, tt := range tests {
		name := tt.scheme
		if tt.configure {
			name += " and ConfigureProxy"
		}
		t.Run(name, func(t *testing.T) {
			srv, pu := startMockProxy(t, tt.scheme)
			origin := newTLSOrigin(t)
			creds := proxyCredentials(tt.scheme, "alice", "wonderland")
			ht := origin.Client().Transport.(*http.Transport).Clone()
			ht.Proxy = http.ProxyURL(pu)
			if tt.configure {
				reauth.ConfigureProxy(ht, creds)
			}
			tr := &reauth.Transport{
				Base:             ht,
				ProxyCredentials: creds,
				Credentials:      reauth.Basic("bob", "builder"),
				Origins:          []string{origin.URL},
			}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr}
			for range 2 {
				status, err := getStatus(t, c, origin.URL+"/x")
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, status)
			}
			p := srv.ProxyRequests()
			assert.Equal(t, tt.connects, statuses(p), "the tunnel is opened once, and kept")
			for _, r := range p {
				assert.Equal(t, http.MethodConnect, r.Method)
			}
			assert.Equal(t, tt.scheme, p[len(p)-1].ProxyScheme)
			_, proxy := origin.seen()
			assert.Equal(t, []string{"", "", ""}, proxy, "the origin never sees Proxy-Authorization")
		})
	}
}
