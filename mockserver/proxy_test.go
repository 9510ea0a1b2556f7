package mockserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newProxyServer starts a server with the forward proxy on, challenging for
// schemes.
func newProxyServer(t *testing.T, schemes ...string) *Server {
	t.Helper()
	srv, _ := newTestServer(t, func(c *Config) { c.Proxy = ProxyConfig{Enabled: true, Schemes: schemes} })
	return srv
}

// proxyGet sends GET target through srv as a forward proxy, with
// proxyAuthorization ("" for none) and authorization ("" for none).
func proxyGet(t *testing.T, srv *Server, target, proxyAuthorization, authorization string) result {
	t.Helper()
	pu, err := url.Parse(srv.URL())
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(t, err)
	if proxyAuthorization != "" {
		req.Header.Set("Proxy-Authorization", proxyAuthorization)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// connect opens a connection to srv and sends CONNECT target with
// proxyAuthorization; it returns the connection and the proxy's response.
func connect(t *testing.T, srv *Server, target, proxyAuthorization string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second))) // a hang fails instead of blocking the run
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if proxyAuthorization != "" {
		req += "Proxy-Authorization: " + proxyAuthorization + "\r\n"
	}
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	return conn, br, resp
}

func proxyChallenges(t *testing.T, h http.Header) []reauth.Challenge {
	t.Helper()
	chs, err := reauth.ParseChallenges(h.Values("Proxy-Authenticate")...)
	require.NoError(t, err)
	return chs
}

func TestProxyChallengesWithTheConfiguredSchemes(t *testing.T) {
	tests := []struct {
		schemes []string
		want    []string // scheme/algorithm of each challenge
	}{
		{nil, []string{"Basic"}},
		{[]string{"basic"}, []string{"Basic"}},
		{[]string{"Digest"}, []string{"Digest/SHA-256", "Digest/MD5"}},
		{[]string{"Basic", "Digest"}, []string{"Basic", "Digest/SHA-256", "Digest/MD5"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.schemes, ","), func(t *testing.T) {
			srv := newProxyServer(t, tt.schemes...)
			r := proxyGet(t, srv, srv.URL()+"/basic/", "", "")
			require.Equal(t, http.StatusProxyAuthRequired, r.status)
			assert.Empty(t, r.header.Values("WWW-Authenticate"))
			var got []string
			for _, ch := range proxyChallenges(t, r.header) {
				assert.Equal(t, "proxy@reauth.mock", ch.Param("realm"))
				if ch.Is("Digest") {
					got = append(got, "Digest/"+ch.Param("algorithm"))
					assert.Equal(t, "auth", ch.Param("qop"))
					assert.NotContains(t, ch.Params, "domain", "domain is not meaningful for a proxy (RFC 7616 §3.3)")
					continue
				}
				got = append(got, ch.Scheme)
			}
			assert.Equal(t, tt.want, got)
			assert.Empty(t, srv.RequestsTo("/basic/"), "nothing is forwarded without proxy credentials")
		})
	}
}

func TestProxyForwardsWithBasicAndConsumesProxyAuthorization(t *testing.T) {
	srv := newProxyServer(t)
	r := proxyGet(t, srv, srv.URL()+"/basic/x?q=1", basic("alice", "wonderland"), basic("bob", "builder"))
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "bob", r.json(t)["user"], "the origin authenticated the origin's credentials")

	origin := srv.RequestsTo("/basic/")
	require.Len(t, origin, 1)
	assert.Equal(t, "basic", origin[0].Scenario)
	assert.Empty(t, origin[0].ProxyCredential, "Proxy-Authorization is consumed by the proxy (RFC 9110 §11.7.2)")
	assert.Equal(t, srv.Redact(basic("bob", "builder")), origin[0].Credential)

	proxied := srv.ProxyRequests()
	require.Len(t, proxied, 1)
	p := proxied[0]
	assert.Equal(t, "proxy", p.Scenario)
	assert.Equal(t, srv.URL()+"/basic/x", p.Target)
	assert.Equal(t, "/basic/x", p.Path)
	assert.Equal(t, "q=1", p.Query)
	assert.Equal(t, "Basic", p.ProxyScheme)
	assert.Equal(t, srv.Redact(basic("alice", "wonderland")), p.ProxyCredential)
	assert.NotContains(t, p.ProxyCredential, "wonderland")
	assert.Equal(t, http.StatusOK, p.Status)
}

func TestProxyRefusesWrongOrMalformedCredentials(t *testing.T) {
	tests := []struct {
		name, proxyAuthorization string
		status                   int
	}{
		{"wrong password", basic("alice", "not-it"), http.StatusProxyAuthRequired},
		{"unknown user", basic("mallory", "x"), http.StatusProxyAuthRequired},
		{"scheme not offered", "Digest username=\"alice\"", http.StatusProxyAuthRequired},
		{"bad base64", "Basic !!!", http.StatusBadRequest},
		{"malformed field", `Basic realm="x`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newProxyServer(t)
			r := proxyGet(t, srv, srv.URL()+"/basic/", tt.proxyAuthorization, "")
			assert.Equal(t, tt.status, r.status, r.body)
			assert.Empty(t, srv.RequestsTo("/"), "nothing is forwarded")
			assert.NotContains(t, r.body, "not-it")
		})
	}
}

// The proxy reaches loopback targets only: anything else gets 403 before
// a connection is attempted (a dial of these would fail with 502 or hang).
func TestProxyRefusesTargetsThatAreNotLoopback(t *testing.T) {
	srv := newProxyServer(t)
	for _, target := range []string{"http://192.0.2.1/", "http://example.com/", "http://10.0.0.1:8080/x"} {
		r := proxyGet(t, srv, target, basic("alice", "wonderland"), "")
		assert.Equal(t, http.StatusForbidden, r.status, target)
	}
	for _, target := range []string{"192.0.2.1:443", "example.com:443"} {
		_, _, resp := connect(t, srv, target, basic("alice", "wonderland"))
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, target)
	}
	p := srv.ProxyRequests()
	require.Len(t, p, 5)
	assert.Equal(t, "192.0.2.1:443", p[3].Target)
	assert.Equal(t, http.MethodConnect, p[3].Method)
}

// The dialer checks the address after name resolution too.
func TestProxyDialerConnectsToLoopbackAddressesOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:443": true, "127.8.9.1:1": true,
		"192.0.2.1:80": false, "[2001:db8::1]:443": false, "0.0.0.0:80": false,
	} {
		err := loopbackOnly("tcp", addr, nil)
		assert.Equal(t, ok, err == nil, addr)
	}
}

func TestProxyForwardsWithDigestAndProvesItself(t *testing.T) {
	srv := newProxyServer(t, "Digest")
	target := srv.URL() + "/basic/"
	r := proxyGet(t, srv, target, "", "")
	require.Equal(t, http.StatusProxyAuthRequired, r.status)
	chs := proxyChallenges(t, r.header)
	require.Len(t, chs, 2)
	require.Equal(t, "SHA-256", chs[0].Param("algorithm"))
	d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: target}

	r = proxyGet(t, srv, target, d.authorization(chs[0]), basic("bob", "builder"))
	require.Equal(t, http.StatusOK, r.status, r.body)
	_, rspauth := d.digest(chs[0], "")
	info := r.header.Get("Proxy-Authentication-Info")
	assert.Contains(t, info, `rspauth="`+rspauth+`"`, "rspauth of RFC 7616 §3.5, with an empty method")
	assert.Empty(t, r.header.Get("Authentication-Info"), "the origin (Basic) sends none")

	p := srv.ProxyRequests()
	require.Len(t, p, 2)
	assert.Equal(t, "Digest", p[1].ProxyScheme)
	assert.Contains(t, p[1].ProxyCredential, `username="alice" algorithm=SHA-256`)
	assert.Empty(t, srv.RequestsTo("/basic/")[0].ProxyCredential)

	// The same nonce count again is a replay: a fresh challenge.
	r = proxyGet(t, srv, target, d.authorization(chs[0]), "")
	assert.Equal(t, http.StatusProxyAuthRequired, r.status)
}

func TestProxyDigestURIIsTheRequestTargetInEitherForm(t *testing.T) {
	// A proxy's request-target is the absolute URL (RFC 9112 §3.2.2); curl
	// puts its path in the Digest uri, and squid accepts both.
	srv := newProxyServer(t, "Digest")
	host := strings.TrimPrefix(srv.URL(), "http://")
	target := srv.URL() + "/basic/?q=1"
	tests := []struct {
		name, uri string
		want      int
	}{
		{"absolute-form, as sent", target, http.StatusOK},
		{"path and query", "/basic/?q=1", http.StatusOK},
		{"path without the query", "/basic/", http.StatusBadRequest},
		{"another path", "/bearer/?q=1", http.StatusBadRequest},
		{"another host", "http://localhost:1/basic/?q=1", http.StatusBadRequest},
		{"authority-form", host, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chs := proxyChallenges(t, proxyGet(t, srv, target, "", "").header)
			d := testDigest{user: "alice", password: "wonderland", method: http.MethodGet, uri: tt.uri}
			r := proxyGet(t, srv, target, d.authorization(chs[0]), basic("alice", "wonderland"))
			assert.Equal(t, tt.want, r.status, r.body)
			if tt.want == http.StatusBadRequest {
				assert.Contains(t, r.body, "uri does not match")
			}
		})
	}
}

func TestProxyTunnelsCONNECTToLoopback(t *testing.T) {
	for _, scheme := range []string{"Basic", "Digest"} {
		t.Run(scheme, func(t *testing.T) {
			srv := newProxyServer(t, scheme)
			target := strings.TrimPrefix(srv.URL(), "http://")
			_, _, resp := connect(t, srv, target, "")
			require.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
			auth := basic("alice", "wonderland")
			if scheme == "Digest" {
				ch := proxyChallenges(t, resp.Header)[0]
				// CONNECT's request-target is authority-form, and so is uri.
				auth = testDigest{user: "alice", password: "wonderland", method: http.MethodConnect, uri: target}.authorization(ch)
			}
			conn, br, resp := connect(t, srv, target, auth)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			if scheme == "Digest" {
				assert.Contains(t, resp.Header.Get("Proxy-Authentication-Info"), "rspauth=")
			}

			// Through the tunnel, plain HTTP to the server itself.
			_, err := io.WriteString(conn, "GET /basic/ HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
			require.NoError(t, err)
			inner, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			inner.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, inner.StatusCode, "the origin's own challenge")

			p := srv.ProxyRequests()
			require.Len(t, p, 2)
			assert.Equal(t, http.MethodConnect, p[1].Method)
			assert.Equal(t, target, p[1].Target)
			assert.Equal(t, scheme, p[1].ProxyScheme)
			assert.Equal(t, http.StatusOK, p[1].Status)
			origin := srv.RequestsTo("/basic/")
			require.Len(t, origin, 1)
			assert.Empty(t, origin[0].ProxyCredential)
		})
	}
}

func TestProxyCloseEndsOpenTunnels(t *testing.T) {
	srv := newProxyServer(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	conn, br, resp := connect(t, srv, strings.TrimPrefix(backend.URL, "http://"), basic("alice", "wonderland"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	srv.Close()
	_, err := br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the tunnel was closed by Close")
	conn.Close()
}

func TestProxyModeIsOffByDefault(t *testing.T) {
	srv, _ := newTestServer(t)
	r := proxyGet(t, srv, srv.URL()+"/basic/", "", basic("alice", "wonderland"))
	assert.Equal(t, http.StatusOK, r.status, "an absolute-form request is served, not forwarded")
	assert.Empty(t, srv.ProxyRequests())
	assert.NotContains(t, srv.Listing(), "forward proxy")
}

func TestProxyConfigIsValidatedAndListed(t *testing.T) {
	_, err := NewUnstarted(Config{Proxy: ProxyConfig{Enabled: true, Schemes: []string{"NTLM"}}})
	assert.ErrorContains(t, err, `"NTLM"`)

	srv := newProxyServer(t, "Basic", "Digest")
	l := srv.Listing()
	assert.Contains(t, l, "forward proxy")
	assert.Contains(t, l, `Basic realm="proxy@reauth.mock"`)
	assert.Contains(t, l, `Digest realm="proxy@reauth.mock"`)
}
