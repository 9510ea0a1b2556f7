package reauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testNet is a network for an *http.Transport that never leaves the host:
// its dialer maps every address it is asked for to a local test server, and
// resolves names with the same resolver the realm policy is given, as the
// system's DNS would. Nothing it is given is dialled as it is.
type testNet struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr // name → successive DNS answers; the last repeats
	asked   map[string]int
	servers map[string]string // "host:port" or "ip:port" → the local server's address
	dialled []string
}

func newTestNet() *testNet {
	return &testNet{answers: map[string][][]netip.Addr{}, asked: map[string]int{}, servers: map[string]string{}}
}

// answer makes name resolve to each of addrs in turn, one per lookup.
func (n *testNet) answer(name string, addrs ...string) {
	for _, a := range addrs {
		n.answers[name] = append(n.answers[name], []netip.Addr{netip.MustParseAddr(a)})
	}
}

// serve makes addr ("host:port" or "ip:port") reach srv.
func (n *testNet) serve(addr string, srv *httptest.Server) {
	n.servers[addr] = srv.Listener.Addr().String()
}

// LookupNetIP is the resolver, for RegistryOptions and for the dialer.
func (n *testNet) LookupNetIP(_ context.Context, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	answers := n.answers[host]
	if len(answers) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(n.asked[host], len(answers)-1)
	n.asked[host]++
	return answers[i], nil
}

func (n *testNet) lookups(host string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.asked[host]
}

func (n *testNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dialled = append(n.dialled, addr)
	target, ok := n.servers[addr]
	n.mu.Unlock()
	if !ok {
		host, port, _ := net.SplitHostPort(addr)
		if _, err := netip.ParseAddr(host); err != nil {
			addrs, err := n.LookupNetIP(ctx, host) // the system's resolution
			if err != nil {
				return nil, err
			}
			n.mu.Lock()
			target, ok = n.servers[net.JoinHostPort(addrs[0].String(), port)]
			n.mu.Unlock()
		}
	}
	if !ok {
		return nil, fmt.Errorf("test network: nothing at %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target) // a local test server
}

func (n *testNet) dials() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.dialled)
}

// transport is an *http.Transport on this network; it trusts any
// certificate, as every https host here is an httptest server.
func (n *testNet) transport(t *testing.T) *http.Transport {
	ht := &http.Transport{DialContext: n.dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(ht.CloseIdleConnections)
	return ht
}

// tokenServer is a realm that issues token to every request.
func tokenServer(t *testing.T, token string, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q}`, token)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRegistryRealmIsDialledOnlyAtTheCheckedAddresses: a realm name that
// answers a public address to the realm policy's lookup and 127.0.0.1 to the
// next one (DNS rebinding) must not reach the service on 127.0.0.1, whose
// token would then go to the registry. The dial uses the addresses checked.
func TestRegistryRealmIsDialledOnlyAtTheCheckedAddresses(t *testing.T) {
	const (
		public   = "203.0.113.10" // stands for a public host; never dialled
		public2  = "203.0.113.11"
		internal = "127.0.0.1"
	)
	for _, tt := range []struct {
		name     string
		redirect bool // the realm redirects to a second name that rebinds too
	}{
		{name: "the realm's name rebinds"},
		{name: "a realm redirect's name rebinds", redirect: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNet()
			var publicHits, public2Hits, internalHits atomic.Int32
			internalSrv := tokenServer(t, "internal-token", &internalHits)
			publicSrv := tokenServer(t, "public-token", &publicHits)
			if tt.redirect {
				publicSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					publicHits.Add(1)
					http.Redirect(w, r, "http://next.rebind.test/token?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
				})
			}
			public2Srv := tokenServer(t, "public-token", &public2Hits)
			var sent []string
			var sentMu sync.Mutex
			registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if a := r.Header.Get("Authorization"); a != "" {
					sentMu.Lock()
					sent = append(sent, a)
					sentMu.Unlock()
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="http://realm.rebind.test/token",service="s",scope="repository:a:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			t.Cleanup(registry.Close)
			n.serve("registry.test:80", registry)
			n.serve(public+":80", publicSrv)
			n.serve(public2+":80", public2Srv)
			n.serve(internal+":80", internalSrv)
			n.answer("realm.rebind.test", public, internal)
			n.answer("next.rebind.test", public2, internal)

			tr := &Transport{
				Base:              n.transport(t),
				Credentials:       RegistryWithOptions("", "", RegistryOptions{LookupNetIP: n.LookupNetIP}),
				Origins:           []string{"http://registry.test"},
				InsecureAllowHTTP: true, // the registry is plain http and not loopback
			}
			_, err := get(t, clientFor(tr), "http://registry.test/v2/a/manifests/latest")
			require.NoError(t, err)
			assert.Zero(t, internalHits.Load(), "the internal service behind the rebinding answer was reached")
			assert.Equal(t, []string{"Bearer public-token"}, sent, "the registry gets the token of the realm that was checked")
			assert.Equal(t, 1, n.lookups("realm.rebind.test"), "one lookup serves the check and the dial")
			want := []string{"registry.test:80", public + ":80"}
			if tt.redirect {
				assert.Equal(t, int32(1), public2Hits.Load())
				assert.Equal(t, 1, n.lookups("next.rebind.test"))
				want = append(want, public2+":80")
			}
			assert.Equal(t, want, n.dials(), "only the checked addresses are dialled")
		})
	}
}

// TestRegistryRealmThroughAProxy: a realm request that Base routes through a
// forward proxy dials the proxy (which resolves the realm's host itself):
// pinning the realm's addresses must not refuse the proxy's.
func TestRegistryRealmThroughAProxy(t *testing.T) {
	n := newTestNet()
	var proxyHits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxyHits.Add(1)
		if r.URL.Host != "realm.proxied.test" { // a forward proxy gets the absolute URL
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"proxied-token"}`)
	}))
	t.Cleanup(proxy.Close)
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer proxied-token" {
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://realm.proxied.test/token",service="s",scope="repository:a:pull"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(registry.Close)
	n.serve("registry.test:80", registry)
	n.serve("proxy.internal.test:3128", proxy)
	n.answer("realm.proxied.test", "203.0.113.20")
	base := n.transport(t)
	proxyURL := &url.URL{Scheme: "http", Host: "proxy.internal.test:3128"}
	base.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "realm.proxied.test" {
			return proxyURL, nil
		}
		return nil, nil
	}
	tr := &Transport{Base: base, Credentials: RegistryWithOptions("", "", RegistryOptions{LookupNetIP: n.LookupNetIP}),
		Origins: []string{"http://registry.test"}, InsecureAllowHTTP: true}
	resp, err := get(t, clientFor(tr), "http://registry.test/v2/a/manifests/latest")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(1), proxyHits.Load())
	assert.Equal(t, []string{"registry.test:80", "proxy.internal.test:3128"}, n.dials())
}

// TestRegistryRealmWithAnOpaqueBase: a Base that is not an *http.Transport
// cannot be made to dial only the checked addresses, so a realm on another
// host name is refused, naming the option that fixes it, and served once
// RealmTransport is set.
func TestRegistryRealmWithAnOpaqueBase(t *testing.T) {
	n := newTestNet()
	var hits atomic.Int32
	realm := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"token":"t0k"}`)
	}))
	t.Cleanup(realm.Close)
	n.serve("203.0.113.30:443", realm)
	n.answer("auth.opaque.test", "203.0.113.30")
	fake := &fakeNet{serve: func(r *http.Request) *http.Response {
		h := http.Header{}
		if r.Header.Get("Authorization") == "Bearer t0k" {
			return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}
		}
		h.Set("WWW-Authenticate", `Bearer realm="https://auth.opaque.test/token",service="s",scope="repository:a:pull"`)
		return &http.Response{StatusCode: 401, Header: h, Body: http.NoBody}
	}}
	opts := RegistryOptions{LookupNetIP: n.LookupNetIP}
	tr := &Transport{Base: fake, Credentials: RegistryWithOptions("", "", opts), Origins: []string{"https://registry.opaque.test"}}
	_, err := get(t, clientFor(tr), "https://registry.opaque.test/v2/a/manifests/latest")
	require.ErrorIs(t, err, ErrRealmNotAllowed)
	assert.Contains(t, err.Error(), "RegistryOptions.RealmTransport")
	assert.True(t, errors.Is(err, ErrFinal))
	assert.False(t, fake.saw("auth.opaque.test"), "the realm request did not go through the opaque Base")
	assert.Empty(t, n.dials())

	opts.RealmTransport = n.transport(t)
	tr = &Transport{Base: fake, Credentials: RegistryWithOptions("", "", opts), Origins: []string{"https://registry.opaque.test"}}
	resp, err := get(t, clientFor(tr), "https://registry.opaque.test/v2/a/manifests/latest")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(1), hits.Load())
	assert.Equal(t, []string{"203.0.113.30:443"}, n.dials(), "RealmTransport dialled the checked address")
}
