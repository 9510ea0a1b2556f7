//go:build integration

package negotiate

// Against a real MIT KDC, Apache httpd with mod_auth_gssapi and squid with
// negotiate_kerberos_auth, all started on 127.0.0.1 by scripts/kerberos.sh
// (scripts/negotiate-integration.sh runs the whole thing). The requests are
// made by a plain http.Client that sets the Negotiate fields by hand with
// this package's token and verification code; integration_transport_test.go
// drives the same code through New and a reauth.Transport.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

const howToStart = "start the servers with scripts/kerberos.sh (or run scripts/negotiate-integration.sh)"

type realm struct {
	cfg      *config.Config
	name     string
	user     string
	password string
	keytab   string
	stale    string
	ghost    string
	web      *url.URL // Apache, http://localhost:PORT
	proxy    *url.URL // squid, http://127.0.0.1:PORT
}

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set; %s", name, howToStart)
	}
	return v
}

func loopbackURL(t *testing.T, name string) *url.URL {
	t.Helper()
	u, err := url.Parse(env(t, name))
	if err != nil || u.Scheme != "http" || (u.Hostname() != "localhost" && !net.ParseIP(u.Hostname()).IsLoopback()) {
		t.Fatalf("%s=%q: want http://localhost:PORT or http://127.0.0.1:PORT", name, os.Getenv(name))
	}
	return u
}

func newRealm(t *testing.T) *realm {
	t.Helper()
	cfg, err := config.Load(env(t, "KRB5_CONFIG"))
	if err != nil {
		t.Fatalf("KRB5_CONFIG: %v", err)
	}
	return &realm{
		cfg:      cfg,
		name:     env(t, "REAUTH_KRB5_REALM"),
		user:     env(t, "REAUTH_KRB5_USER"),
		password: env(t, "REAUTH_KRB5_PASSWORD"),
		keytab:   env(t, "REAUTH_KRB5_KEYTAB"),
		stale:    env(t, "REAUTH_KRB5_STALE_KEYTAB"),
		ghost:    env(t, "REAUTH_KRB5_GHOST_KEYTAB"),
		web:      loopbackURL(t, "REAUTH_NEGOTIATE_URL"),
		proxy:    loopbackURL(t, "REAUTH_NEGOTIATE_PROXY"),
	}
}

// keytabClient logs in as user with the keytab at path. gokrb5 does not
// speak FAST (RFC 6113), which MIT offers: it must be turned off.
func (r *realm) keytabClient(t *testing.T, user, path string) *client.Client {
	t.Helper()
	kt, err := keytab.Load(path)
	if err != nil {
		t.Fatalf("keytab %s: %v", path, err)
	}
	cl := client.NewWithKeytab(user, r.name, kt, r.cfg, client.DisablePAFXFAST(true))
	t.Cleanup(cl.Destroy)
	return cl
}

// ccacheClient runs MIT's kinit with alice's keytab into a credential cache
// of the test's own and builds the client from that cache, as a user whose
// desktop session already holds a TGT would.
func (r *realm) ccacheClient(t *testing.T) *client.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ccache")
	cmd := exec.Command("kinit", "-k", "-t", r.keytab, r.user+"@"+r.name)
	cmd.Env = append(os.Environ(), "KRB5CCNAME=FILE:"+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit: %v: %s", err, out)
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		t.Fatalf("ccache: %v", err)
	}
	cl, err := client.NewFromCCache(cc, r.cfg, client.DisablePAFXFAST(true))
	if err != nil {
		t.Fatalf("client from ccache: %v", err)
	}
	t.Cleanup(cl.Destroy)
	return cl
}

func (r *realm) passwordClient(t *testing.T, password string) *client.Client {
	t.Helper()
	cl := client.NewWithPassword(r.user, r.name, password, r.cfg, client.DisablePAFXFAST(true))
	t.Cleanup(cl.Destroy)
	return cl
}

// counting is an http.Client that dials loopback only ("localhost" is
// dialled as 127.0.0.1, whatever /etc/hosts says) and counts the requests
// it sends, CONNECTs included.
type counting struct {
	*http.Client
	sent atomic.Int32
}

func newCounting(t *testing.T, proxy *url.URL, connectHeader func() http.Header, tlsCfg *tls.Config) *counting {
	t.Helper()
	c := &counting{}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == "localhost" {
				host = "127.0.0.1"
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("test dialer: %s is not loopback", addr)
			}
			c.sent.Add(1)
			return d.DialContext(ctx, network, net.JoinHostPort(host, port))
		},
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true, // one connection, one request: sent counts requests
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	if connectHeader != nil {
		tr.GetProxyConnectHeader = func(context.Context, *url.URL, string) (http.Header, error) {
			return connectHeader(), nil
		}
	}
	c.Client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// get sends GET u with the given Authorization (origin) or
// Proxy-Authorization (proxy) value, and returns the response with its body
// read.
func (c *counting) get(t *testing.T, u string, field, value string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set(field, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp, string(body)
}

func hasBareNegotiate(h http.Header, field string) bool {
	for _, v := range h.Values(field) {
		if strings.EqualFold(strings.TrimSpace(v), "Negotiate") {
			return true
		}
	}
	return false
}

// negotiateOnce answers Apache's challenge for path as the adapter will:
// the token for the origin's SPN, then the mutual authentication of the 200.
func negotiateOnce(t *testing.T, c *counting, cl *client.Client, u *url.URL) (*http.Response, string, *secContext) {
	t.Helper()
	spn, err := spnPolicy{}.spn(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if spn != "HTTP/localhost" {
		t.Fatalf("spn = %q, want HTTP/localhost", spn)
	}
	tok, sc, err := initToken(cl, spn)
	if err != nil {
		t.Fatalf("initToken: %v", err)
	}
	resp, body := c.get(t, u.String(), "Authorization", "Negotiate "+tok)
	return resp, body, sc
}

func verifyResponse(t *testing.T, resp *http.Response, sc *secContext) {
	t.Helper()
	raw, found, err := serverToken(resp.Header, false)
	if err != nil || !found {
		t.Fatalf("final response %d: server token found=%v err=%v; want Apache's AP-REP", resp.StatusCode, found, err)
	}
	if err := sc.verify(raw); err != nil {
		t.Fatalf("mutual authentication of Apache's genuine answer: %v", err)
	}
}

// 200 in two requests (the challenge, the answer), mutual authentication
// verified; then one request per call when the token goes up front, with a
// keytab, a password and a credential cache.
func TestIntegrationOriginTwoRequestsThenOne(t *testing.T) {
	r := newRealm(t)
	for name, cl := range map[string]*client.Client{
		"keytab":   r.keytabClient(t, r.user, r.keytab),
		"password": r.passwordClient(t, r.password),
		"ccache":   r.ccacheClient(t),
	} {
		t.Run(name, func(t *testing.T) {
			c := newCounting(t, nil, nil, nil)
			u := r.web.JoinPath("/negotiate/")

			resp, _ := c.get(t, u.String(), "", "")
			if resp.StatusCode != http.StatusUnauthorized || !hasBareNegotiate(resp.Header, "WWW-Authenticate") {
				t.Fatalf("unauthenticated GET: %d %q, want 401 with WWW-Authenticate: Negotiate",
					resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
			}
			resp, body, sc := negotiateOnce(t, c, cl, u)
			if resp.StatusCode != http.StatusOK || body != "ok negotiate\n" {
				t.Fatalf("answered GET: %d %q, want 200", resp.StatusCode, body)
			}
			verifyResponse(t, resp, sc)
			if n := c.sent.Load(); n != 2 {
				t.Errorf("first call took %d requests, want 2", n)
			}

			// Preemptive: later calls send a fresh token up front.
			for i := range 2 {
				before := c.sent.Load()
				resp, _, sc := negotiateOnce(t, c, cl, u)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("preemptive call %d: %d, want 200", i, resp.StatusCode)
				}
				verifyResponse(t, resp, sc)
				if n := c.sent.Load() - before; n != 1 {
					t.Errorf("preemptive call %d took %d requests, want 1", i, n)
				}
			}
			t.Logf("requests per call: 2 on the first, 1 with the token up front (%s)", name)
		})
	}
}

// A genuine AP-REP altered in transit, or a genuine AP-REP of another
// request (a replayed answer), is refused with ErrMutualAuthentication.
func TestIntegrationTamperedServerTokenRefused(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)
	c := newCounting(t, nil, nil, nil)
	u := r.web.JoinPath("/negotiate/")

	respA, _, scA := negotiateOnce(t, c, cl, u)
	respB, _, scB := negotiateOnce(t, c, cl, u)
	if respA.StatusCode != http.StatusOK || respB.StatusCode != http.StatusOK {
		t.Fatalf("statuses %d, %d; want 200", respA.StatusCode, respB.StatusCode)
	}
	rawA, _, err := serverToken(respA.Header, false)
	if err != nil {
		t.Fatal(err)
	}
	rawB, _, err := serverToken(respB.Header, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := scA.verify(rawA); err != nil {
		t.Fatalf("A's own answer: %v", err)
	}
	if bytes.Equal(rawA, rawB) {
		t.Fatal("Apache answered two requests with the same AP-REP")
	}
	if err := scA.verify(rawB); !errors.Is(err, ErrMutualAuthentication) || !strings.Contains(err.Error(), "another authenticator") {
		t.Errorf("A's context with B's answer: %v, want ErrMutualAuthentication (another authenticator)", err)
	}
	if err := scB.verify(rawA); !errors.Is(err, ErrMutualAuthentication) {
		t.Errorf("B's context with A's answer: %v, want ErrMutualAuthentication", err)
	}
	// Every byte flipped in turn: the AP-REP's encrypted part is integrity
	// protected, so any change to it is refused. gofork's ASN.1 decoder
	// ignores the class bits of tags, so a few flips in the framing decode
	// to the very same AP-REP: those must still verify, and nothing else may.
	cipherOf := func(tok []byte) []byte {
		var resp spnego.NegTokenResp
		if resp.Unmarshal(tok) != nil {
			return nil
		}
		var mt spnego.KRB5Token
		if mt.Unmarshal(resp.ResponseToken) != nil || !mt.IsAPRep() {
			return nil
		}
		return mt.APRep.EncPart.Cipher
	}
	original := cipherOf(rawA)
	refused, same := 0, 0
	for i := range rawA {
		tampered := bytes.Clone(rawA)
		tampered[i] ^= 0x40
		err := scA.verify(tampered)
		switch {
		case errors.Is(err, ErrMutualAuthentication):
			refused++
		case err == nil && bytes.Equal(cipherOf(tampered), original):
			same++
		default:
			t.Errorf("byte %d of %d flipped: verify = %v, want ErrMutualAuthentication", i, len(rawA), err)
		}
	}
	t.Logf("%d one-byte alterations refused, %d in ASN.1 framing decoded to the same AP-REP", refused, same)
}

// A keytab whose key the KDC has replaced, a principal the KDC no longer
// knows, a wrong password, and a service principal the KDC does not know:
// the KDC refuses, no token is built, and the error matches ErrKDCRefused
// and names the KRB-ERROR (and carries no key or password).
func TestIntegrationWrongCredentials(t *testing.T) {
	r := newRealm(t)
	cases := []struct {
		name string
		cl   *client.Client
		spn  string
		code int32
	}{
		{"stale keytab", r.keytabClient(t, "stale", r.stale), "HTTP/localhost", errorcode.KDC_ERR_PREAUTH_FAILED},
		{"deleted principal", r.keytabClient(t, "ghost", r.ghost), "HTTP/localhost", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"wrong password", r.passwordClient(t, "not-"+r.password), "HTTP/localhost", errorcode.KDC_ERR_PREAUTH_FAILED},
		{"unknown service principal", r.keytabClient(t, r.user, r.keytab), "HTTP/nosuch.localhost", errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, sc, err := initToken(tc.cl, tc.spn)
			if err == nil || tok != "" || sc != nil {
				t.Fatalf("initToken = %d-byte token, %v; want an error", len(tok), err)
			}
			if !errors.Is(err, ErrKDCRefused) {
				t.Errorf("error %q does not match ErrKDCRefused", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, errorcode.Lookup(tc.code)) || !strings.Contains(msg, tc.spn) {
				t.Errorf("error %q does not name %s and %s", msg, errorcode.Lookup(tc.code), tc.spn)
			}
			if !strings.HasPrefix(msg, "reauth: negotiate: ") || strings.Count(msg, "reauth: ") != 1 {
				t.Errorf("error %q: want one \"reauth: negotiate: \" prefix", msg)
			}
			if strings.Contains(msg, r.password) {
				t.Error("error text carries the password")
			}
		})
	}
}

// A ticket for a principal the server has no key for (here squid's, sent
// to Apache) is refused with another 401: the adapter's one retry is spent
// and the request ends there.
func TestIntegrationWrongPrincipalIsRefused(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)
	c := newCounting(t, nil, nil, nil)
	tok, _, err := initToken(cl, "HTTP/127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := c.get(t, r.web.JoinPath("/negotiate/").String(), "Authorization", "Negotiate "+tok)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token for another service: %d, want 401", resp.StatusCode)
	}
}

// A path alice may not read: 403 after a successful authentication. The
// 403 is final whatever the server sends with it.
func TestIntegrationForbiddenIsFinal(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)
	c := newCounting(t, nil, nil, nil)
	resp, _, sc := negotiateOnce(t, c, cl, r.web.JoinPath("/negotiate-other/"))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /negotiate-other/ as alice: %d, want 403", resp.StatusCode)
	}
	raw, found, err := serverToken(resp.Header, false)
	switch {
	case err != nil:
		t.Fatalf("403's Negotiate token: %v", err)
	case found:
		if err := sc.verify(raw); err != nil {
			t.Errorf("403's mutual authentication: %v", err)
		}
		t.Log("Apache sends its AP-REP with the 403 too: Observe can verify it")
	default:
		t.Log("Apache sends no AP-REP with the 403")
	}
}

// squid as a Negotiate proxy, with its own principal HTTP/127.0.0.1: a
// plain-http request is answered 407 and then passes with a token in
// Proxy-Authorization; a CONNECT to an https origin the same way.
func TestIntegrationProxy(t *testing.T) {
	r := newRealm(t)
	cl := r.keytabClient(t, r.user, r.keytab)
	proxySPN, err := spnPolicy{}.spn(context.Background(), r.proxy)
	if err != nil || proxySPN != "HTTP/127.0.0.1" {
		t.Fatalf("proxy spn = %q, %v; want HTTP/127.0.0.1", proxySPN, err)
	}
	token := func(t *testing.T) string {
		tok, _, err := initToken(cl, proxySPN)
		if err != nil {
			t.Fatalf("initToken for the proxy: %v", err)
		}
		return "Negotiate " + tok
	}

	t.Run("http", func(t *testing.T) {
		c := newCounting(t, r.proxy, nil, nil)
		target := r.web.JoinPath("/public/").String()
		resp, _ := c.get(t, target, "", "")
		if resp.StatusCode != http.StatusProxyAuthRequired || !hasBareNegotiate(resp.Header, "Proxy-Authenticate") {
			t.Fatalf("through squid without credentials: %d %q, want 407 with Proxy-Authenticate: Negotiate",
				resp.StatusCode, resp.Header.Values("Proxy-Authenticate"))
		}
		resp, body := c.get(t, target, "Proxy-Authorization", token(t))
		if resp.StatusCode != http.StatusOK || body != "ok public\n" {
			t.Fatalf("through squid with a token: %d %q, want 200", resp.StatusCode, body)
		}
		if n := c.sent.Load(); n != 2 {
			t.Errorf("took %d requests, want 2", n)
		}
	})

	t.Run("CONNECT", func(t *testing.T) {
		origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok tls\n")
		}))
		defer origin.Close()
		pool := origin.Client().Transport.(*http.Transport).TLSClientConfig

		bare := newCounting(t, r.proxy, nil, pool)
		req, err := http.NewRequest(http.MethodGet, origin.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := bare.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("CONNECT without credentials: %d, want a 407 refusal", resp.StatusCode)
		}
		if !strings.Contains(err.Error(), "Proxy Authentication Required") {
			t.Fatalf("CONNECT without credentials: %v, want 407", err)
		}

		var connects atomic.Int32
		c := newCounting(t, r.proxy, func() http.Header {
			connects.Add(1)
			return http.Header{"Proxy-Authorization": {token(t)}}
		}, pool)
		resp, body := c.get(t, origin.URL, "", "")
		if resp.StatusCode != http.StatusOK || body != "ok tls\n" {
			t.Fatalf("CONNECT with a token: %d %q, want 200", resp.StatusCode, body)
		}
		if n := connects.Load(); n != 1 {
			t.Errorf("%d CONNECTs, want 1", n)
		}
	})
}

// The negotiator driven as the seam will drive it, against Apache: two
// requests, then one with the preemptive option; the 403 path ends with
// the 403, its AP-REP verified; mutual authentication required holds.
func TestIntegrationNegotiatorAgainstApache(t *testing.T) {
	r := newRealm(t)
	n := newNegotiator(r.keytabClient(t, r.user, r.keytab))
	n.preemptive, n.mutualRequired = true, true
	c := newCounting(t, nil, nil, nil)
	u := r.web.JoinPath("/negotiate/")

	if status, err := roundTrip(t, n, c.Client, u, false); status != http.StatusOK || err != nil {
		t.Fatalf("first call: %d, %v", status, err)
	}
	if got := c.sent.Load(); got != 2 {
		t.Errorf("first call: %d requests, want 2", got)
	}
	before := c.sent.Load()
	if status, err := roundTrip(t, n, c.Client, u, false); status != http.StatusOK || err != nil {
		t.Fatalf("second call: %d, %v", status, err)
	}
	if got := c.sent.Load() - before; got != 1 {
		t.Errorf("second call: %d requests, want 1", got)
	}
	if status, err := roundTrip(t, n, c.Client, r.web.JoinPath("/negotiate-other/"), false); status != http.StatusForbidden || err != nil {
		t.Errorf("forbidden path: %d, %v; want 403 (the AP-REP verified)", status, err)
	}
}
