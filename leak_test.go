package reauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// Leak tests: credentials go only where they are bound (DESIGN.md, invariant 4)
// and no secret shows in errors, logs, events or panics (invariant 7).
// Every secret contains SENTINEL so that captured output can be searched
// for all of them at once; their encoded forms are searched too. Test
// output never prints a secret: leaks are described by where they were.

const (
	leakPassword      = "pw-SENTINEL-leak-3d1"
	leakToken         = "tok-SENTINEL-leak-8e2"
	leakClientSecret  = "cs-SENTINEL-leak-5a7"
	leakProxyPassword = "proxy-SENTINEL-leak-c44"
)

var (
	leakBasic      = "Basic " + b64("alice:"+leakPassword)
	leakProxyBasic = "Basic " + b64("proxyuser:"+leakProxyPassword)
)

// The encoded forms of the leak secrets, which do not contain SENTINEL,
// for the one secret search of the tests (reauth.AssertNoSecret).
func init() {
	reauth.PlantEncoded(
		b64("alice:"+leakPassword),
		b64("proxyuser:"+leakProxyPassword),
		b64("client:"+leakClientSecret),
		url.QueryEscape(leakPassword),
	)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// sink is a server that credentials must never reach: it records every
// request that carries Authorization, Proxy-Authorization or a secret
// anywhere, and answers with a challenge so that a client tempted to answer
// it gets the chance.
type sink struct {
	*httptest.Server
	name      string
	challenge string // WWW-Authenticate of its 401; "" for a 200

	mu    sync.Mutex
	hits  int
	leaks []string
}

func newSink(t *testing.T, name string, useTLS bool) *sink {
	s := &sink{name: name}
	h := http.HandlerFunc(s.serve)
	if useTLS {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.hits++
	if r.Header.Get("Authorization") != "" {
		s.leaks = append(s.leaks, "an Authorization field ("+strings.SplitN(r.Header.Get("Authorization"), " ", 2)[0]+")")
	}
	if r.Header.Get("Proxy-Authorization") != "" {
		s.leaks = append(s.leaks, "a Proxy-Authorization field")
	}
	var all strings.Builder
	all.WriteString(r.URL.String())
	r.Header.Write(&all)
	all.Write(body)
	if found := reauth.FindSecret(all.String()); found != "" {
		s.leaks = append(s.leaks, found+" in the request")
	}
	challenge := s.challenge
	s.mu.Unlock()
	if challenge == "" {
		io.WriteString(w, "ok")
		return
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Proxy-Authenticate", `Basic realm="sink"`)
	w.WriteHeader(http.StatusUnauthorized)
}

func (s *sink) setChallenge(c string) {
	s.mu.Lock()
	s.challenge = c
	s.mu.Unlock()
}

func (s *sink) assertClean(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Empty(t, s.leaks, "%s (not bound) received credentials", s.name)
}

// home is a bound origin: it authenticates the request with the scheme
// under test, challenging when it has to, and redirects to wherever
// ?to= says with the status ?code= says. It also serves an OAuth2 token
// endpoint (/token) and a registry token realm (/realm).
type home struct {
	*httptest.Server
	scheme string

	tokenFetches, realmFetches atomic.Int32
}

func newHome(t *testing.T, scheme string, useTLS bool, domain string) *home {
	h := &home{scheme: scheme}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			n := h.tokenFetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"oat-SENTINEL-%d","token_type":"Bearer"}`, n)
			return
		case "/realm":
			n := h.realmFetches.Add(1)
			if r.Header.Get("Authorization") != leakBasic {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"token":"reg-SENTINEL-%d","expires_in":300}`, n)
			return
		}
		if challenge := h.refuse(r, domain); challenge != "" {
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if to := r.URL.Query().Get("to"); to != "" {
			code := 302
			fmt.Sscan(r.URL.Query().Get("code"), &code)
			http.Redirect(w, r, to, code)
			return
		}
		io.WriteString(w, "ok")
	})
	if useTLS {
		h.Server = httptest.NewTLSServer(handler)
	} else {
		h.Server = httptest.NewServer(handler)
	}
	t.Cleanup(h.Close)
	return h
}

// refuse returns the challenge for a request without the credentials of
// h.scheme, or "" to let it through.
func (h *home) refuse(r *http.Request, domain string) string {
	v := r.Header.Get("Authorization")
	switch h.scheme {
	case "Basic":
		if v != leakBasic {
			return `Basic realm="home"`
		}
	case "Bearer":
		if v != "Bearer "+leakToken {
			return `Bearer realm="home"`
		}
	case "Digest":
		// Not a check of the digest (mockserver does that): a leak test
		// needs the client to answer, and the domain to name other origins.
		if !strings.HasPrefix(v, "Digest ") || !strings.Contains(v, `username="alice"`) {
			return `Digest realm="home", qop="auth", algorithm=SHA-256, nonce="n0nce", domain="` + domain + `"`
		}
	case "OAuth2":
		if !strings.HasPrefix(v, "Bearer oat-SENTINEL-") {
			return `Bearer realm="home"`
		}
	case "Registry":
		if !strings.HasPrefix(v, "Bearer reg-SENTINEL-") {
			return `Bearer realm="` + originOf(r) + `/realm",service="home",scope="repository:team/app:pull"`
		}
	}
	return ""
}

func originOf(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// leakCredentials returns fresh credentials of the scheme, with the token
// endpoint at tokenURL.
func leakCredentials(scheme, tokenURL string, client *http.Client) reauth.Credentials {
	switch scheme {
	case "Basic":
		return reauth.Basic("alice", leakPassword)
	case "Bearer":
		return reauth.Bearer(leakToken)
	case "Digest":
		return reauth.Digest("alice", leakPassword)
	case "OAuth2":
		return reauth.ClientCredentials(&clientcredentials.Config{
			ClientID: "client", ClientSecret: leakClientSecret, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader,
		}, reauth.OAuth2Options{HTTPClient: client})
	case "Registry":
		return reauth.Registry("alice", leakPassword)
	}
	panic("unknown scheme " + scheme)
}

// sinkChallenge is what a foreign origin asks the credentials of scheme
// for: the same scheme, and for a registry the home's own realm.
func sinkChallenge(scheme, realm string) string {
	switch scheme {
	case "Basic":
		return `Basic realm="home"`
	case "Digest":
		return `Digest realm="home", qop="auth", algorithm=SHA-256, nonce="foreign"`
	case "Registry":
		return `Bearer realm="` + realm + `",service="home",scope="repository:team/app:pull"`
	}
	return `Bearer realm="home", error="invalid_token"`
}

// trustingTransport trusts the httptest TLS certificate (every httptest TLS
// server has the same one).
func trustingTransport(t *testing.T, tlsServer *httptest.Server) *http.Transport {
	ht := tlsServer.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(ht.CloseIdleConnections)
	return ht
}

// logCapture collects what a Transport logs at debug level and reports as
// events.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *logCapture) onEvent(e reauth.Event) { fmt.Fprintf(c, "event %+v\n", e) }

// TestCredentialsNeverReachUnboundOrigins runs each scheme against a bound
// origin (plain http and https) that authenticates the request and then
// redirects it with 301, 302, 307 and 308: to another http origin, to an
// https origin (http→https), and to the plain-http form of a bound https
// origin (a downgrade: same host and port, other scheme). Every target
// challenges for the same scheme, and Digest's domain names them all; none
// may receive a credential. A direct request to each follows.
func TestCredentialsNeverReachUnboundOrigins(t *testing.T) {
	for _, scheme := range []string{"Basic", "Bearer", "Digest", "OAuth2", "Registry"} {
		for _, from := range []string{"http", "https"} {
			for _, code := range []int{301, 302, 307, 308} {
				t.Run(fmt.Sprintf("%s/%s/%d", scheme, from, code), func(t *testing.T) {
					other := newSink(t, "another http origin", false)
					otherTLS := newSink(t, "an https origin", true)
					downgrade := newSink(t, "the http form of a bound https origin", false)
					sinks := []*sink{other, otherTLS, downgrade}
					domain := "/ " + other.URL + "/ " + otherTLS.URL + "/ " + downgrade.URL + "/"
					src := newHome(t, scheme, from == "https", domain)
					for _, s := range sinks {
						s.setChallenge(sinkChallenge(scheme, src.URL+"/realm"))
					}
					var logs logCapture
					base := trustingTransport(t, otherTLS.Server)
					creds := leakCredentials(scheme, src.URL+"/token", &http.Client{Transport: base})
					client := &http.Client{Transport: &reauth.Transport{
						Base: base, Credentials: creds, Logger: logs.logger(), OnEvent: logs.onEvent,
						// downgrade's host and port are bound, for https only.
						Origins: []string{src.URL, "https://" + downgrade.Listener.Addr().String()},
					}}
					path := "/v2/team/app/blobs/sha256:1" // a registry path, for the registry's scopes

					for _, s := range sinks {
						target := s.URL + "/landing"
						u := src.URL + path + "?code=" + fmt.Sprint(code) + "&to=" + url.QueryEscape(target)
						resp, err := client.Post(u, "text/plain", strings.NewReader("payload"))
						require.NoError(t, err)
						resp.Body.Close()
						assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the foreign challenge is passed through unanswered")
						assert.Equal(t, target, resp.Request.URL.String(), "the redirect was followed")

						resp, err = client.Get(s.URL + path)
						require.NoError(t, err)
						resp.Body.Close()
					}
					for _, s := range sinks {
						s.assertClean(t)
						assert.Equal(t, 2, s.hits, "%s: one request each, none retried with credentials", s.name)
					}
					assert.LessOrEqual(t, src.tokenFetches.Load()+src.realmFetches.Load(), int32(1),
						"a token fetched for a foreign origin's challenge")
					reauth.AssertNoSecret(t, "the debug log and events", logs.String())
				})
			}
		}
	}
}

// proxyRecorder is a forward proxy (absolute-form http and CONNECT to
// loopback) that wants leakProxyBasic, and records what each request
// carried.
type proxyRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []proxySeen
}

type proxySeen struct {
	method, host  string
	authorization bool // the request carried the origin's Authorization
	proxyAuthOK   bool
}

func newProxyRecorder(t *testing.T) *proxyRecorder {
	p := &proxyRecorder{}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *proxyRecorder) serve(w http.ResponseWriter, r *http.Request) {
	ok := r.Header.Get("Proxy-Authorization") == leakProxyBasic
	p.mu.Lock()
	p.seen = append(p.seen, proxySeen{r.Method, r.Host, r.Header.Get("Authorization") != "", ok})
	p.mu.Unlock()
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		host, _, _ := net.SplitHostPort(r.Host)
		if host != "127.0.0.1" {
			http.Error(w, "loopback only", http.StatusForbidden)
			return
		}
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		buf.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		buf.Flush()
		go func() { io.Copy(upstream, buf); upstream.Close() }()
		io.Copy(conn, upstream)
		conn.Close()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization") // a proxy consumes its own field
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *proxyRecorder) requests() []proxySeen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxySeen(nil), p.seen...)
}

// TestProxyCredentialsGoOnlyToTheProxy sends requests through a proxy that
// wants its own credentials: plain http (Transport.ProxyCredentials) and
// https (CONNECT, ConfigureProxy), to bound and unbound origins, and by
// redirect from one to the other. The proxy must never see the origin's
// Authorization except on plain-http requests to a bound origin (there it
// forwards the request); no origin may see Proxy-Authorization; an unbound
// origin sees nothing. Without a proxy in the path, an origin's 407 is not
// answered.
func TestProxyCredentialsGoOnlyToTheProxy(t *testing.T) {
	proxy := newProxyRecorder(t)
	bound := newHome(t, "Basic", false, "")
	boundTLS := newHome(t, "Basic", true, "")
	other := newSink(t, "an unbound http origin behind the proxy", false)
	otherTLS := newSink(t, "an unbound https origin behind the proxy", true)
	other.setChallenge(`Basic realm="home"`)
	otherTLS.setChallenge(`Basic realm="home"`)

	ht := trustingTransport(t, boundTLS.Server)
	proxyURL, _ := url.Parse(proxy.URL)
	ht.Proxy = http.ProxyURL(proxyURL)
	proxyCreds := reauth.Basic("proxyuser", leakProxyPassword)
	reauth.ConfigureProxy(ht, proxyCreds)
	var logs logCapture
	client := &http.Client{Transport: &reauth.Transport{
		Base: ht, Credentials: reauth.Basic("alice", leakPassword), ProxyCredentials: proxyCreds,
		Origins: []string{bound.URL, boundTLS.URL}, Logger: logs.logger(), OnEvent: logs.onEvent,
	}}

	for _, u := range []string{
		bound.URL, boundTLS.URL, other.URL, otherTLS.URL,
		bound.URL + "/?code=307&to=" + url.QueryEscape(other.URL+"/x"),
		boundTLS.URL + "/?code=302&to=" + url.QueryEscape(otherTLS.URL+"/x"),
		boundTLS.URL + "/?code=301&to=" + url.QueryEscape(other.URL+"/x"),
	} {
		resp, err := client.Get(u)
		require.NoError(t, err, "GET %s", u)
		resp.Body.Close()
	}
	other.assertClean(t)
	otherTLS.assertClean(t)
	for _, s := range proxy.requests() {
		switch {
		case s.method == http.MethodConnect && s.authorization:
			t.Errorf("a CONNECT to %s carried the origin's Authorization", s.host)
		case s.method != http.MethodConnect && s.authorization && s.host != bound.Listener.Addr().String():
			t.Errorf("the proxy saw Authorization for %s, which is not bound", s.host)
		}
	}

	t.Run("the origin behind a CONNECT never sees Proxy-Authorization", func(t *testing.T) {
		tunnelled := newSink(t, "an https origin reached through CONNECT", true)
		resp, err := client.Get(tunnelled.URL)
		require.NoError(t, err)
		resp.Body.Close()
		tunnelled.assertClean(t)
	})

	t.Run("no proxy in the path: an origin's 407 is not answered", func(t *testing.T) {
		direct := newSink(t, "an origin answering 407", false)
		direct.setChallenge(`Basic realm="home"`)
		tr := &reauth.Transport{Base: &http.Transport{}, ProxyCredentials: proxyCreds, Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
		req, _ := http.NewRequest(http.MethodGet, direct.URL, nil)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		direct.assertClean(t)
	})
	reauth.AssertNoSecret(t, "the debug log and events", logs.String())
}

// TestNoSecretInErrorsLogsOrEvents drives every scheme into failure (wrong
// credentials, endpoints refusing and echoing the secrets back, bad
// tokens) through NewClient with a debug logger, and searches every error
// string, the Transport's and retryablehttp's log lines and the events for
// the secrets.
func TestNoSecretInErrorsLogsOrEvents(t *testing.T) {
	// echo answers every request with 401 and a challenge (realm and error
	// fields) and an error body that repeat what it was sent: the
	// credentials fields and the form.
	echo := func(challenge string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got := r.Header.Get("Authorization") + " " + r.Header.Get("Proxy-Authorization") + " " + string(body)
			quoted := strings.NewReplacer(`"`, "", `\`, "").Replace(got)
			w.Header().Set("WWW-Authenticate", strings.Replace(challenge, `realm="`, `realm="`+quoted+` `, 1)+
				`, error="invalid_token", error_description="you sent `+quoted+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "you sent " + got, "details": got})
		}
	}
	tokenEndpoint := httptest.NewServer(echo(`Basic realm="token"`))
	t.Cleanup(tokenEndpoint.Close)
	realm := httptest.NewServer(echo(`Basic realm="realm"`))
	t.Cleanup(realm.Close)

	tests := []struct {
		name      string
		challenge string
		creds     reauth.Credentials
		proxy     bool
	}{
		{"Basic refused", `Basic realm="api"`, reauth.Basic("alice", leakPassword), false},
		{"Preemptive Basic refused", `Basic realm="api"`, reauth.Preemptive(reauth.Basic("alice", leakPassword)), false},
		{"Bearer refused", `Bearer realm="api"`, reauth.Bearer(leakToken), false},
		{"Digest refused", `Digest realm="api", qop="auth", algorithm=SHA-256, nonce="n1"`, reauth.Digest("alice", leakPassword), false},
		{"OAuth2 token endpoint refuses", `Bearer realm="api"`, reauth.ClientCredentials(&clientcredentials.Config{
			ClientID: "client", ClientSecret: leakClientSecret, TokenURL: tokenEndpoint.URL, AuthStyle: oauth2.AuthStyleInHeader,
		}, reauth.OAuth2Options{}), false},
		{"OAuth2 bad token", `Bearer realm="api"`, reauth.OAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: leakToken + " with space"})), false},
		{"Registry realm refuses", `Bearer realm="` + realm.URL + `",service="s",scope="repository:team/app:pull"`, reauth.Registry("alice", leakPassword), false},
		{"Registry realm refuses the refresh token", `Bearer realm="` + realm.URL + `",service="s",scope="repository:team/app:pull"`,
			reauth.RegistryWithOptions("", "", reauth.RegistryOptions{RefreshToken: leakToken, PasswordGrant: true}), false},
		{"proxy refuses", `Basic realm="api"`, reauth.Basic("alice", leakPassword), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := echo(tt.challenge)
			if tt.proxy {
				// The API plays the proxy: every request answered 407.
				handler = func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Proxy-Authenticate", `Basic realm="proxy `+r.Header.Get("Proxy-Authorization")+`"`)
					w.WriteHeader(http.StatusProxyAuthRequired)
				}
			}
			api := httptest.NewServer(handler)
			t.Cleanup(api.Close)
			var logs logCapture
			tr := &reauth.Transport{Base: &http.Transport{}, Credentials: tt.creds, Origins: []string{api.URL}, Logger: logs.logger(), OnEvent: logs.onEvent}
			if tt.proxy {
				proxyURL, _ := url.Parse(api.URL)
				tr.Proxy = http.ProxyURL(proxyURL)
				tr.ProxyCredentials = reauth.Basic("proxyuser", leakProxyPassword)
				tr.Credentials = nil
			}
			c := reauth.NewClient(tr)
			c.RetryMax, c.RetryWaitMin, c.RetryWaitMax = 1, time.Millisecond, time.Millisecond
			for range 2 {
				resp, err := c.Get(api.URL + "/resource")
				if resp != nil {
					resp.Body.Close()
				}
				require.Error(t, err)
				reauth.AssertNoSecret(t, "the error", err.Error())
				reauth.AssertNoSecret(t, "the error printed with %+v", fmt.Sprintf("%+v", err))
			}
			require.NotEmpty(t, logs.String())
			reauth.AssertNoSecret(t, "the debug log and events", logs.String())
			tr.CloseIdleConnections()
		})
	}
}

// TestErrorTextCarriesNoControlCharactersFromServers: the free text a
// server puts in a challenge or an error body goes into Error() cleaned, so
// that it cannot forge lines or reorder text in the caller's logs (found by
// FuzzTransport and FuzzRegistryTokenRealm).
func TestErrorTextCarriesNoControlCharactersFromServers(t *testing.T) {
	const forged = "ok\nlevel=INFO msg=\"forged line\" \u202eevil"
	quoted, _ := json.Marshal(forged)
	tests := []struct {
		name  string
		serve http.HandlerFunc
		creds reauth.Credentials
	}{
		{"Bearer error_description", func(w http.ResponseWriter, r *http.Request) {
			// A challenge cannot carry a newline; it can carry bidi controls.
			w.Header().Set("WWW-Authenticate", "Bearer error=\"invalid_token\", error_description=\"expired \u202e gnp.exe\"")
			w.WriteHeader(http.StatusUnauthorized)
		}, reauth.Bearer("token")},
		{"registry error message on a 403", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":%s}]}`, quoted)
		}, reauth.Bearer("token")},
		{"registry realm's error_description", nil, reauth.Registry("alice", "wonderland")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := tt.serve
			var origins []string
			if serve == nil {
				realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%s}`, quoted)
				}))
				t.Cleanup(realm.Close)
				origins = append(origins, realm.URL) // the password goes to bound realms only
				serve = func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm.URL+`",service="s",scope="repository:a/b:pull"`)
					w.WriteHeader(http.StatusUnauthorized)
				}
			}
			api := httptest.NewServer(serve)
			t.Cleanup(api.Close)
			tr := &reauth.Transport{Credentials: tt.creds, Origins: append(origins, api.URL)}
			req, _ := http.NewRequest(http.MethodGet, api.URL+"/v2/a/b/manifests/x", nil)
			_, err := tr.RoundTrip(req)
			require.Error(t, err)
			msg := err.Error()
			assert.NotContains(t, msg, "\n")
			assert.NotContains(t, msg, "\u202e")
			assert.Contains(t, msg, "?", "the control characters are replaced, the rest of the text kept")
		})
	}
}

// TestCredentialsPrintWithoutSecrets: a Credentials value printed with fmt
// or logged with slog shows its kind, not its secret (before, Digest and
// Registry printed the password and Basic and Bearer the field value).
func TestCredentialsPrintWithoutSecrets(t *testing.T) {
	for _, creds := range []reauth.Credentials{
		reauth.Basic("alice", leakPassword),
		reauth.Preemptive(reauth.Basic("alice", leakPassword)),
		reauth.Bearer(leakToken),
		reauth.Digest("alice", leakPassword),
		reauth.OAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: leakToken})),
		reauth.Registry("alice", leakPassword),
		reauth.RegistryWithOptions("", "", reauth.RegistryOptions{RefreshToken: leakToken}),
	} {
		t.Run(fmt.Sprintf("%T", creds), func(t *testing.T) {
			var out bytes.Buffer
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				fmt.Fprintf(&out, verb+"\n", creds)
			}
			fmt.Fprintf(&out, "%+v\n", &reauth.Transport{Credentials: creds, ProxyCredentials: creds})
			slog.New(slog.NewTextHandler(&out, nil)).Info("creds", "c", creds)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("creds", "c", creds)
			func() {
				defer func() { fmt.Fprint(&out, recover()) }()
				panic(creds)
			}()
			assert.Contains(t, out.String(), "reauth.")
			reauth.AssertNoSecret(t, "the printed credentials", out.String())
		})
	}
}

// TestCrashOutputHoldsNoSecret crashes a child process in the middle of
// authenticated requests (the base RoundTripper and the credentials panic
// with the credentials already attached) and searches its whole output,
// panic value and every goroutine's traceback, for the secrets.
func TestCrashOutputHoldsNoSecret(t *testing.T) {
	if mode := os.Getenv("REAUTH_CRASH_CHILD"); mode != "" {
		crashChild(mode)
		return
	}
	for mode, panicked := range map[string]string{
		"base":        "index out of range",
		"credentials": "nil pointer dereference",
		"value":       "reauth.Preemptive(reauth.Basic(redacted))",
	} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashOutputHoldsNoSecret$")
			cmd.Env = append(os.Environ(), "REAUTH_CRASH_CHILD="+mode, "GOTRACEBACK=all")
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the child did not crash")
			require.Contains(t, string(out), "panic: ")
			require.Contains(t, string(out), panicked, "the child crashed elsewhere")
			require.Contains(t, string(out), "reauth.(*Transport).RoundTrip", "the traceback shows the request in flight")
			reauth.AssertNoSecret(t, "the crash output", string(out))
		})
	}
}

// crashChild panics inside a RoundTrip whose request carries credentials.
func crashChild(mode string) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	creds := reauth.Preemptive(reauth.Basic("alice", leakPassword))
	var base http.RoundTripper = http.DefaultTransport
	switch mode {
	case "base":
		base = crashingBase{}
	case "credentials":
		creds = crashingCredentials{creds}
	case "value":
		base = roundTripFunc(func(r *http.Request) (*http.Response, error) { panic(creds) })
	}
	tr := &reauth.Transport{Base: base, Credentials: creds, Origins: []string{api.URL}}
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/?token="+url.QueryEscape(leakToken), nil)
	tr.RoundTrip(req)
}

type crashingBase struct{}

func (crashingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	var fields []string
	_ = fields[len(r.Header.Get("Authorization"))] // a runtime error, with the credential at hand
	return nil, nil
}

type crashingCredentials struct{ reauth.Credentials }

func (c crashingCredentials) Refused(r *reauth.AuthRequest, refusal *reauth.Refusal) (reauth.Retry, error) {
	var p *reauth.Refusal
	return p.Allowed, nil // nil dereference
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestEchoedSecretsAreRedactedFromEveryErrorField: a server that echoes the
// credentials it was sent (the field value, the token, Basic's password, as
// they are and JSON-escaped) into its challenge, its registry error body
// and its body gets them replaced in every typed error: Error(), the
// challenges, the Bearer fields, RegistryErrors and Body. Before, a 403's
// registry error message printed them as sent.
func TestEchoedSecretsAreRedactedFromEveryErrorField(t *testing.T) {
	const oddPassword = `pw"<SENTINEL>&\odd` // JSON-escaped, it reads differently
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := r.Header.Get("Authorization")
			if _, password, ok := r.BasicAuth(); ok {
				got += " password " + password
			}
			quoted := strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(got) // a quoted-string of got
			scheme := "Bearer"
			if strings.HasPrefix(got, "Basic ") && status != http.StatusBadRequest {
				scheme = "Basic"
			}
			code := "invalid_token"
			if status == http.StatusBadRequest {
				code = "invalid_request"
			}
			w.Header().Set("WWW-Authenticate", scheme+` realm="you sent `+quoted+`", error="`+code+`", error_description="you sent `+quoted+`", scope="`+quoted+`", max_age="`+quoted+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			msg, _ := json.Marshal("you sent " + got)
			fmt.Fprintf(w, `{"errors":[{"code":%s,"message":%s,"detail":%s}]}`, msg, msg, msg)
		}
	}
	creds := map[string]func() reauth.Credentials{
		"Bearer":           func() reauth.Credentials { return reauth.Bearer(leakToken) },
		"Preemptive Basic": func() reauth.Credentials { return reauth.Preemptive(reauth.Basic("alice", leakPassword)) },
		"Preemptive Basic, password with JSON escapes": func() reauth.Credentials {
			return reauth.Preemptive(reauth.Basic("alice", oddPassword))
		},
	}
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest} {
		for name, newCreds := range creds {
			t.Run(fmt.Sprintf("%d %s", status, name), func(t *testing.T) {
				api := httptest.NewServer(echo(status))
				t.Cleanup(api.Close)
				tr := &reauth.Transport{Credentials: newCreds(), Origins: []string{api.URL}}
				req, _ := http.NewRequest(http.MethodGet, api.URL+"/v2/team/app/manifests/v1", nil)
				_, err := tr.RoundTrip(req)
				require.Error(t, err)
				reauth.AssertNoSecret(t, "the error", err.Error())
				reauth.AssertNoSecret(t, "the error printed with %+v", fmt.Sprintf("%+v", err))
				var fields any
				var ue *reauth.UnauthorizedError
				var fe *reauth.ForbiddenError
				var ie *reauth.InvalidRequestError
				switch {
				case errors.As(err, &ue):
					require.Equal(t, http.StatusUnauthorized, status)
					fields = *ue
					reauth.AssertNoSecret(t, "the body", string(ue.Body))
				case errors.As(err, &fe):
					require.Equal(t, http.StatusForbidden, status)
					require.NotEmpty(t, fe.RegistryErrors())
					assert.True(t, strings.Contains(fe.RegistryErrors()[0].Message, "[redacted]"), "the message is kept, the secret replaced")
					assert.True(t, strings.Contains(fe.Error(), "[redacted]"), "the message is printed, the secret replaced")
					fields = *fe
					reauth.AssertNoSecret(t, "the body", string(fe.Body))
				case errors.As(err, &ie):
					require.Equal(t, http.StatusBadRequest, status)
					fields = *ie
					reauth.AssertNoSecret(t, "the body", string(ie.Body))
				default:
					t.Fatalf("not a typed error: %T", err)
				}
				reauth.AssertNoSecret(t, "the error's fields", fmt.Sprintf("%#v", fields))
			})
		}
	}
}
