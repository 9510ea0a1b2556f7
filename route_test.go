package reauth

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Where a request goes, and what goes with it: reauth asks the proxy
// function once per request and the request goes where that answer said.

func TestTheProxyFunctionIsAskedOncePerRequest(t *testing.T) {
	// A pool that moves on after each answer: the proxy first, then direct.
	var calls atomic.Int32
	var pu *url.URL
	flaky := func(*http.Request) (*url.URL, error) {
		if calls.Add(1) == 1 {
			return pu, nil
		}
		return nil, nil
	}
	for _, base := range []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"Transport.Proxy over an *http.Transport", func() http.RoundTripper { return &http.Transport{} }},
		{"Transport.Proxy over a nil Base", func() http.RoundTripper { return nil }},
	} {
		t.Run(base.name, func(t *testing.T) {
			proxy := basicProxy(t)
			origin := newRecorder(t, okHandler)
			var err error
			pu, err = url.Parse(proxy.URL)
			require.NoError(t, err)
			calls.Store(0)
			tr := &Transport{Base: base.rt(), Proxy: flaky, ProxyCredentials: Preemptive(Basic("proxyuser", proxyPassword))}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := get(t, clientFor(tr), origin.URL+"/x")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, int32(1), calls.Load(), "one decision per request")
			for _, r := range origin.requests() {
				assert.True(t, r.ProxyAuthorization == "", "Proxy-Authorization reached the origin")
			}
			assert.NotEmpty(t, proxy.forwarded(), "the request went where the decision said")
		})
	}
}

// fakeDialer makes an *http.Transport reach every address at one loopback
// server, so that a test can name a public proxy without dialing it.
func fakeDialer(target string, dialed *atomic.Int32) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		dialed.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
}

func TestLoopbackExemptionHoldsOnlyOnTheHost(t *testing.T) {
	origin := newRecorder(t, okHandler)
	farProxy := newRecorder(t, okHandler) // stands in for proxy.example:3128
	far, _ := url.Parse("http://proxy.example:3128")

	t.Run("Bearer to a loopback origin through a proxy elsewhere is refused", func(t *testing.T) {
		var dialed atomic.Int32
		for _, base := range []http.RoundTripper{
			&http.Transport{DialContext: fakeDialer(farProxy.Listener.Addr().String(), &dialed)},
			roundTripFunc(func(r *http.Request) (*http.Response, error) {
				dialed.Add(1)
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			}),
		} {
			tr := &Transport{Base: base, Proxy: http.ProxyURL(far), Credentials: Bearer(testToken), Origins: []string{origin.URL}}
			_, err := get(t, clientFor(tr), origin.URL+"/x")
			require.ErrorIs(t, err, ErrInsecureCredentials)
			assert.Contains(t, err.Error(), "through the proxy http://proxy.example:3128")
			assertNoSecret(t, "the error", err.Error())
		}
		assert.Zero(t, dialed.Load(), "nothing was sent")
		assert.Zero(t, farProxy.count())
	})
	t.Run("through a proxy on the host it is sent", func(t *testing.T) {
		proxy := newTestProxy(t, "", func(string) bool { return true })
		pu, _ := url.Parse(proxy.URL)
		tr := &Transport{Base: &http.Transport{}, Proxy: http.ProxyURL(pu), Credentials: Bearer(testToken), Origins: []string{origin.URL}}
		t.Cleanup(tr.CloseIdleConnections)
		_, err := get(t, clientFor(tr), origin.URL+"/y")
		require.NoError(t, err)
		assert.Len(t, proxy.forwarded(), 1)
		reqs := origin.requests()
		require.NotEmpty(t, reqs)
		assert.True(t, reqs[len(reqs)-1].Authorization == "Bearer "+testToken, "the origin got the token")
	})
}

func TestCloseIdleConnectionsReachesThePrivateCopy(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &Transport{Base: &http.Transport{}, Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
	c := clientFor(tr)
	for range 2 {
		resp, err := c.Get(srv.URL)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body) // read to the end: the connection goes idle
		require.NoError(t, err)
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	assert.Equal(t, int32(2), conns.Load(), "the idle connection was closed, so the second request opened a new one")
}
