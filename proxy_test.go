package reauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const proxyPassword = "proxy-pw-SENTINEL-c4e1"

var proxyBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte("proxyuser:"+proxyPassword))

// testProxy is a forward proxy: plain-http requests are forwarded, CONNECT
// opens a tunnel (to loopback targets only). Both want Proxy-Authorization.
type testProxy struct {
	*httptest.Server
	mu       sync.Mutex
	connects []http.Header // the header of each CONNECT
	forwards []string      // the Proxy-Authorization of each plain-http request

	// Set before the first request.
	accept    func(proxyAuthorization string) bool
	challenge string // the Proxy-Authenticate of a 407
	status    int    // when set, every CONNECT is answered with it
}

func newTestProxy(t *testing.T, challenge string, accept func(string) bool) *testProxy {
	t.Helper()
	p := &testProxy{accept: accept, challenge: challenge}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// basicProxy wants proxyuser:proxyPassword with Basic.
func basicProxy(t *testing.T) *testProxy {
	return newTestProxy(t, `Basic realm="proxy"`, func(v string) bool { return v == proxyBasic })
}

func (p *testProxy) serve(w http.ResponseWriter, r *http.Request) {
	v := r.Header.Get("Proxy-Authorization")
	p.mu.Lock()
	if r.Method == http.MethodConnect {
		p.connects = append(p.connects, r.Header.Clone())
	} else {
		p.forwards = append(p.forwards, v)
	}
	p.mu.Unlock()
	switch {
	case r.Method == http.MethodConnect && p.status != 0:
		w.WriteHeader(p.status)
		return
	case !p.accept(v):
		w.Header().Set("Proxy-Authenticate", p.challenge)
		w.WriteHeader(http.StatusProxyAuthRequired)
		io.WriteString(w, "proxy says no")
		return
	case r.Method == http.MethodConnect:
		p.tunnel(w, r)
		return
	}
	out, _ := http.NewRequest(r.Method, r.URL.String(), r.Body)
	out.Header = r.Header.Clone()
	out.Header.Del("Proxy-Authorization") // hop-by-hop: consumed here
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *testProxy) tunnel(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if a, perr := netip.ParseAddr(host); err != nil || perr != nil || !a.IsLoopback() {
		w.WriteHeader(http.StatusForbidden) // this proxy reaches loopback only
		return
	}
	target, err := net.Dial("tcp", r.Host)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		target.Close()
		return
	}
	io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n")
	go func() {
		io.Copy(target, brw)
		target.Close()
	}()
	io.Copy(conn, target)
	conn.Close()
}

// connectAuthorizations returns the Proxy-Authorization of each CONNECT.
func (p *testProxy) connectAuthorizations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, h := range p.connects {
		out = append(out, h.Get("Proxy-Authorization"))
	}
	return out
}

func (p *testProxy) forwarded() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.forwards)
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// viaProxy returns an http.Transport that trusts target's certificate and
// goes through p, with ConfigureProxy(creds).
func viaProxy(t *testing.T, p *testProxy, target *recorder, creds Credentials) *http.Transport {
	t.Helper()
	ht := target.Client().Transport.(*http.Transport).Clone()
	pu, err := url.Parse(p.URL)
	require.NoError(t, err)
	ht.Proxy = http.ProxyURL(pu)
	ConfigureProxy(ht, creds)
	t.Cleanup(ht.CloseIdleConnections)
	return ht
}

// nonceCreds stand in for Digest: nothing can be sent before a challenge;
// the answer depends on the challenge's nonce; once a protection space has
// challenged, its answer is sent up front.
type nonceCreds struct {
	mu      sync.Mutex
	learned map[Origin]string // protection space → nonce
}

func (c *nonceCreds) Authorize(r *AuthRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.learned[r.Origin()]; ok {
		r.SetProof(r.Field(), nonceAnswer(n))
	}
	return nil
}

func (c *nonceCreds) Observe(*AuthRequest, *http.Response) error { return nil }

func (c *nonceCreds) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	for _, ch := range ref.Challenges {
		if ch.Is("Nonce") && ch.Params["nonce"] != "" {
			c.mu.Lock()
			if c.learned == nil {
				c.learned = map[Origin]string{}
			}
			c.learned[r.Origin()] = ch.Params["nonce"]
			c.mu.Unlock()
			return RetryChallenge, nil
		}
	}
	return 0, nil
}

func nonceAnswer(nonce string) string {
	return fmt.Sprintf(`Nonce response="%s-SENTINEL-answer"`, nonce)
}

// nonceProxy wants the answer to nonce n1.
func nonceProxy(t *testing.T) *testProxy {
	return newTestProxy(t, `Nonce realm="proxy", nonce="n1"`, func(v string) bool { return v == nonceAnswer("n1") })
}

func TestPlainHTTPProxyWrongPasswordIsFinalAfterOneRetry(t *testing.T) {
	proxy := basicProxy(t)
	origin := newRecorder(t, okHandler)
	pu, _ := url.Parse(proxy.URL)
	tr := &Transport{
		Base:             &http.Transport{Proxy: http.ProxyURL(pu)},
		ProxyCredentials: Basic("proxyuser", "wrong-"+proxyPassword),
	}
	_, err := get(t, clientFor(tr), origin.URL+"/x")
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, http.StatusProxyAuthRequired, ue.StatusCode)
	assert.ErrorIs(t, err, ErrRefusedAfterRetry)
	assert.Equal(t, 2, ue.Attempts)
	require.Len(t, proxy.forwarded(), 2, "the challenge, then the one retry")
	assert.Empty(t, proxy.forwarded()[0], "Basic waits for the proxy's challenge")
	assert.Zero(t, origin.count())
	assertNoSecret(t, "the text", err.Error())
}

func TestConnectBasicGoesWithTheFirstCONNECT(t *testing.T) {
	proxy := basicProxy(t)
	target := newTLSRecorder(t, basicServer)
	creds := Basic("proxyuser", proxyPassword)
	ht := viaProxy(t, proxy, target, creds)
	c := clientFor(&Transport{Base: ht, Credentials: Basic(testUser, testPassword), Origins: []string{target.URL}, ProxyCredentials: creds})

	resp, err := do(t, c, "GET", target.URL+"/a")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{proxyBasic}, proxy.connectAuthorizations(), "one CONNECT, Basic up front")
	require.Len(t, target.requests(), 2, "407 never happened; 401 then 200 at the origin")

	_, err = do(t, c, "GET", target.URL+"/b")
	require.NoError(t, err)
	assert.Len(t, proxy.connectAuthorizations(), 1, "the tunnel is reused")
	assert.Len(t, target.requests(), 3)
	for _, r := range target.requests() {
		assert.Empty(t, r.ProxyAuthorization, "proxy credentials never travel through the tunnel")
	}
	assert.Empty(t, proxy.forwarded(), "https requests reach the proxy as CONNECT only")
}

func TestConnectChallengeIsLearnedThenAnswered(t *testing.T) {
	t.Run("through a Transport: one retry with the answer", func(t *testing.T) {
		proxy := nonceProxy(t)
		target := newTLSRecorder(t, okHandler)
		c := clientFor(&Transport{Base: viaProxy(t, proxy, target, &nonceCreds{})})
		resp, err := c.Post(target.URL+"/upload", "text/plain", strings.NewReader("payload"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, []string{"", nonceAnswer("n1")}, proxy.connectAuthorizations())
		reqs := target.requests()
		require.Len(t, reqs, 1)
		assert.Equal(t, "payload", reqs[0].Body, "the retry carries the body")
		assert.Empty(t, reqs[0].ProxyAuthorization)
	})
	t.Run("without a Transport: a typed error, then the next request is answered", func(t *testing.T) {
		proxy := nonceProxy(t)
		target := newTLSRecorder(t, okHandler)
		c := &http.Client{Transport: viaProxy(t, proxy, target, &nonceCreds{})}
		_, err := c.Get(target.URL)
		var pe *UnauthorizedError
		require.ErrorAs(t, err, &pe, "through *url.Error")
		assert.ErrorIs(t, err, ErrUnauthorized)
		assert.Equal(t, http.StatusProxyAuthRequired, pe.StatusCode)
		require.Len(t, pe.Challenges, 1)
		assert.Equal(t, "n1", pe.Challenges[0].Params["nonce"])
		assert.Equal(t, http.MethodConnect, pe.Method)
		assert.Equal(t, strings.TrimPrefix(target.URL, "https://"), pe.URL)
		assert.Equal(t, 1, pe.Attempts)
		assert.Contains(t, err.Error(), "send the request again")
		assertNoSecret(t, "the text", err.Error())

		resp, err := c.Get(target.URL)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []string{"", nonceAnswer("n1")}, proxy.connectAuthorizations())
	})
}

func TestConnectRefusalIsFinal(t *testing.T) {
	tests := []struct {
		name     string
		creds    Credentials
		status   int      // the proxy's answer to every CONNECT
		connects []string // Proxy-Authorization of each CONNECT
		is, why  error
	}{
		{
			name: "wrong Basic password", creds: Basic("proxyuser", "wrong-"+proxyPassword), status: 407,
			connects: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("proxyuser:wrong-"+proxyPassword))},
			is:       ErrUnauthorized, why: ErrSameCredentials,
		},
		{
			name: "no credentials", status: 407, connects: []string{""},
			is: ErrUnauthorized, why: ErrNoCredentials,
		},
		{
			name: "credentials that cannot answer the challenge", creds: &nonceCreds{}, status: 407, connects: []string{""},
			is: ErrUnauthorized, why: ErrNoCredentials,
		},
		{
			name: "the proxy refuses the tunnel", creds: Basic("proxyuser", proxyPassword), status: 403,
			connects: []string{proxyBasic}, is: ErrForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := newTestProxy(t, `Basic realm="proxy"`, func(string) bool { return false })
			if tt.status != 407 {
				proxy.status = tt.status
			}
			target := newTLSRecorder(t, okHandler)
			rc := NewClient(&Transport{Base: viaProxy(t, proxy, target, tt.creds)})
			rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
			_, err := rc.Get(target.URL)
			if tt.status == http.StatusForbidden {
				var fe *ForbiddenError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.status, fe.StatusCode)
				assert.True(t, fe.Proxy, "the proxy refused, not the origin")
				assert.Equal(t, http.MethodConnect, fe.Method)
			} else {
				var ue *UnauthorizedError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, tt.status, ue.StatusCode)
				assert.Equal(t, http.MethodConnect, ue.Method)
			}
			assert.ErrorIs(t, err, tt.is)
			if tt.why != nil {
				assert.ErrorIs(t, err, tt.why)
			}
			assert.Equal(t, tt.connects, proxy.connectAuthorizations(), "neither reauth nor the retrying client repeats it")
			assert.Empty(t, target.requests())
			assertNoSecret(t, "the text", err.Error())
		})
	}
}

func TestConnectNeverSendsTheSameProxyAuthorizationTwice(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(n int32) string // the n-th answer
		connects []string
		why      error
	}{
		{"a new answer each time: one retry", func(n int32) string { return fmt.Sprintf("Custom v%d", n) }, []string{"Custom v0", "Custom v1"}, ErrRefusedAfterRetry},
		{"the refused value again: no retry", func(int32) string { return "Custom v0" }, []string{"Custom v0"}, ErrSameCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answers atomic.Int32
			creds := credsFunc{
				// Always the first value: only the answer a retry carries
				// can make the second CONNECT differ.
				authorization: func(*AuthRequest) (string, error) { return "Custom v0", nil },
				answer: func(*AuthRequest, *Refusal) (string, error) {
					return tt.answer(answers.Add(1)), nil
				},
			}
			proxy := newTestProxy(t, `Custom realm="proxy"`, func(string) bool { return false })
			target := newTLSRecorder(t, okHandler)
			_, err := get(t, clientFor(&Transport{Base: viaProxy(t, proxy, target, creds)}), target.URL)
			require.ErrorIs(t, err, ErrUnauthorized)
			assert.ErrorIs(t, err, tt.why)
			assert.Equal(t, tt.connects, proxy.connectAuthorizations())
		})
	}
}

func TestConfigureProxyKeepsTheTransportsOwnHooks(t *testing.T) {
	proxy := basicProxy(t)
	target := newTLSRecorder(t, okHandler)
	ht := target.Client().Transport.(*http.Transport).Clone()
	pu, _ := url.Parse(proxy.URL)
	ht.Proxy = http.ProxyURL(pu)
	ht.ProxyConnectHeader = http.Header{"X-Proxy-Tag": {"tests"}}
	var seenStatus atomic.Int32
	ht.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
		seenStatus.Store(int32(resp.StatusCode))
		return nil
	}
	ConfigureProxy(ht, Basic("proxyuser", proxyPassword))
	t.Cleanup(ht.CloseIdleConnections)

	_, err := get(t, &http.Client{Transport: ht}, target.URL)
	require.NoError(t, err)
	proxy.mu.Lock()
	require.Len(t, proxy.connects, 1)
	h := proxy.connects[0]
	proxy.mu.Unlock()
	assert.Equal(t, "tests", h.Get("X-Proxy-Tag"))
	assert.Equal(t, proxyBasic, h.Get("Proxy-Authorization"))
	assert.Equal(t, int32(200), seenStatus.Load())
	assert.Nil(t, ht.ProxyConnectHeader.Values("Proxy-Authorization"), "the caller's header is not modified")
}

func TestProxyCredentialsAnswerTheCONNECTOnce(t *testing.T) {
	var asked atomic.Int32
	creds := credsFunc{
		authorization: func(r *AuthRequest) (string, error) {
			if r.Request().Method == http.MethodConnect {
				asked.Add(1)
			}
			return "Custom ok", nil
		},
		answer: func(*AuthRequest, *Refusal) (string, error) { return "", nil },
	}
	for _, configure := range []bool{false, true} {
		asked.Store(0)
		proxy := newTestProxy(t, `Custom realm="proxy"`, func(v string) bool { return v == "Custom ok" })
		target := newTLSRecorder(t, okHandler)
		ht := target.Client().Transport.(*http.Transport).Clone()
		pu, _ := url.Parse(proxy.URL)
		ht.Proxy = http.ProxyURL(pu)
		if configure {
			ConfigureProxy(ht, creds)
		}
		tr := &Transport{Base: ht, ProxyCredentials: creds}
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := get(t, clientFor(tr), target.URL)
		require.NoError(t, err, "ConfigureProxy on Base: %v", configure)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, []string{"Custom ok"}, proxy.connectAuthorizations())
		assert.Equal(t, int32(1), asked.Load(), "the CONNECT is answered once (ConfigureProxy on Base: %v)", configure)
	}
}

// squidDenying is a forward proxy that wants proxyBasic and then refuses to
// forward, as squid does with an http_access deny rule.
func squidDenying(t *testing.T) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != proxyBasic {
			w.Header().Set("Proxy-Authenticate", `Basic realm="squid"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		w.Header().Set("X-Squid-Error", "ERR_ACCESS_DENIED 0")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "Access Denied")
	})
}

func TestForbiddenAfterProxyCredentialsIsFinalAndTyped(t *testing.T) {
	forbidding := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	tests := []struct {
		name      string
		proxy     func(t *testing.T) *recorder
		target    string
		origin    bool // Credentials bound to the target
		wantProxy bool
	}{
		{"squid denies, no origin credentials", squidDenying, "http://127.0.0.1:9/x", false, true},
		{"squid denies, origin credentials too", squidDenying, "http://127.0.0.1:9/x", true, true},
		{"the origin denies behind the proxy", func(t *testing.T) *recorder {
			p := newTestProxy(t, `Basic realm="p"`, func(v string) bool { return v == proxyBasic })
			return &recorder{Server: p.Server}
		}, forbidding.URL + "/x", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.proxy(t)
			pu, _ := url.Parse(p.URL)
			var l listener
			tr := &Transport{Base: &http.Transport{}, Proxy: http.ProxyURL(pu), ProxyCredentials: Preemptive(Basic("proxyuser", proxyPassword))}
			if tt.origin {
				target, _ := url.Parse(tt.target)
				tr.Credentials, tr.Origins = Bearer(testToken), []string{"http://" + target.Host}
			}
			t.Cleanup(tr.CloseIdleConnections)
			c := NewClient(l.attach(tr))
			c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, time.Millisecond
			_, err := c.Get(tt.target)
			var fe *ForbiddenError
			require.ErrorAs(t, err, &fe)
			assert.ErrorIs(t, err, ErrForbidden)
			assert.Equal(t, tt.wantProxy, fe.Proxy)
			assert.Equal(t, tt.wantProxy, l.only(t, EventForbidden).Proxy)
			assertNoSecret(t, "the error", err.Error())
		})
	}
	t.Run("ReturnResponse gives the 403", func(t *testing.T) {
		pu, _ := url.Parse(squidDenying(t).URL)
		tr := &Transport{Base: &http.Transport{}, Proxy: http.ProxyURL(pu), ProxyCredentials: Basic("proxyuser", proxyPassword), ReturnResponse: true}
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := get(t, clientFor(tr), "http://127.0.0.1:9/x")
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, "ERR_ACCESS_DENIED 0", resp.Header.Get("X-Squid-Error"))
	})
}

// TestConnectRefusedForAnotherReasonIsRetryable: a CONNECT refused with a
// status that is not about credentials (a 502 from a proxy that cannot
// reach the origin) is a plain error, neither final nor typed as an auth
// failure, so the retrying client tries again.
func TestConnectRefusedForAnotherReasonIsRetryable(t *testing.T) {
	proxy := newTestProxy(t, `Basic realm="proxy"`, func(string) bool { return false })
	proxy.status = http.StatusBadGateway
	target := newTLSRecorder(t, okHandler)
	rc := NewClient(&Transport{Base: viaProxy(t, proxy, target, Basic("proxyuser", proxyPassword))})
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = 2, time.Millisecond, time.Millisecond
	_, err := rc.Get(target.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "502 bad gateway")
	assert.NotErrorIs(t, err, ErrFinal)
	assert.NotErrorIs(t, err, ErrUnauthorized)
	assert.NotErrorIs(t, err, ErrForbidden)
	assert.Equal(t, []string{proxyBasic, proxyBasic, proxyBasic}, proxy.connectAuthorizations(), "tried again by the retrying client")
	assert.Empty(t, target.requests())
	assertNoSecret(t, "the text", err.Error())
}
