package reauth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// DPoP (RFC 9449) and private_key_jwt (RFC 7523) against the mock's
// /dpop/… scenarios, whose proof verifier is the mock's own. Counts are the
// requests the server logged.

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// dpopCC is the mock's client at the DPoP token endpoint tokenPath.
func dpopCC(srv *mockserver.Server, tokenPath string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: mockClientID, ClientSecret: mockClientSecret,
		TokenURL: srv.URL() + tokenPath, AuthStyle: oauth2.AuthStyleInHeader,
	}
}

func getN(t *testing.T, c *http.Client, target string, n int) {
	t.Helper()
	for range n {
		_, err := getJSON(context.Background(), c, target)
		require.NoError(t, err)
	}
}

func TestMockDPoPSteadyStateIsOneRequestPerCall(t *testing.T) {
	for _, tc := range []struct {
		name, token, resource string
		tokens, first         []int
	}{
		{"without nonces", "/dpop/token", "/dpop/resource", []int{200}, []int{200}},
		{"with nonces", "/dpop/nonce/token", "/dpop/nonce/resource", []int{400, 200}, []int{401, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startMock(t)
			key := newP256(t)
			c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
				return reauth.ClientCredentials(dpopCC(srv, tc.token), reauth.OAuth2Options{HTTPClient: hc, DPoP: key})
			})
			getN(t, c, srv.URL()+tc.resource, 4)
			assert.Equal(t, tc.tokens, statuses(srv.RequestsTo(tc.token)), "the token endpoint: one fetch, its nonce retried once")
			res := srv.RequestsTo(tc.resource)
			assert.Equal(t, append(tc.first, 200, 200, 200), statuses(res), "then one request per call: the nonce of each 200 is used by the next")
			for _, r := range res {
				assert.Equal(t, "DPoP", r.Scheme)
			}
		})
	}
}

// N concurrent first calls while the nonces rotate: every call ends, and no
// call sends more than two requests (the retry ceiling).
func TestMockDPoPRotatingNonceUnderConcurrencyDoesNotLoop(t *testing.T) {
	const n = 24
	srv := startMock(t)
	key := newP256(t)
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(dpopCC(srv, "/dpop/nonce/token"), reauth.OAuth2Options{HTTPClient: hc, DPoP: key})
	})
	// N concurrent first calls: one token fetch (its nonce retried once),
	// at most two resource requests each.
	var first sync.WaitGroup
	firstErrs := make(chan error, n)
	for range n {
		first.Go(func() {
			_, err := getJSON(context.Background(), c, srv.URL()+"/dpop/nonce/resource")
			firstErrs <- err
		})
	}
	first.Wait()
	close(firstErrs)
	for err := range firstErrs {
		require.NoError(t, err)
	}
	assert.Equal(t, []int{400, 200}, statuses(srv.RequestsTo("/dpop/nonce/token")), "one fetch shared by the first calls")
	assert.LessOrEqual(t, len(srv.RequestsTo("/dpop/nonce/resource")), 2*n)
	srv.ResetRequests()

	// N concurrent calls while the nonces rotate.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := getJSON(context.Background(), c, srv.URL()+"/dpop/nonce/resource")
			errs <- err
		})
	}
	wg.Go(func() {
		<-start
		for range 5 {
			srv.RotateDPoPNonces()
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			assert.ErrorIs(t, err, reauth.ErrUnauthorized, "a call refused twice stops at the ceiling")
		}
	}
	res := srv.RequestsTo("/dpop/nonce/resource")
	assert.LessOrEqual(t, len(res), 2*n)
	assert.Empty(t, srv.RequestsTo("/dpop/nonce/token"), "a nonce is no reason to fetch a token")

	// Once the rotation stops, one nonce retry, then one request per call.
	srv.RotateDPoPNonces()
	srv.ResetRequests()
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 3)
	assert.Equal(t, []int{401, 200, 200, 200}, statuses(srv.RequestsTo("/dpop/nonce/resource")))
}

// replayProof is a base transport that sends the first DPoP proof it saw on
// path with every later request to it: the mock refuses the replay.
type replayProof struct {
	base  http.RoundTripper
	path  string
	mu    sync.Mutex
	proof string
}

func (p *replayProof) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == p.path && req.Header.Get("DPoP") != "" {
		p.mu.Lock()
		if p.proof == "" {
			p.proof = req.Header.Get("DPoP")
		} else {
			req = req.Clone(req.Context())
			req.Header.Set("DPoP", p.proof)
		}
		p.mu.Unlock()
	}
	return p.base.RoundTrip(req)
}

func TestMockDPoPInvalidProofIsFinalAndTyped(t *testing.T) {
	srv := startMock(t)
	key := newP256(t)
	base := &replayProof{base: http.DefaultTransport, path: "/dpop/resource"}
	c := &http.Client{Transport: &reauth.Transport{
		Base:        base,
		Credentials: reauth.ClientCredentials(dpopCC(srv, "/dpop/token"), reauth.OAuth2Options{DPoP: key}),
		Origins:     []string{srv.URL()},
	}}
	getN(t, c, srv.URL()+"/dpop/resource", 1)
	_, err := getJSON(context.Background(), c, srv.URL()+"/dpop/resource")
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrInvalidDPoPProof)
	assert.ErrorIs(t, err, reauth.ErrFinal)
	var ue *reauth.UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 1, ue.Attempts, "no retry: another proof of the same key is refused alike")
	assert.Equal(t, []int{200, 401}, statuses(srv.RequestsTo("/dpop/resource")))
	assert.Len(t, srv.RequestsTo("/dpop/token"), 1, "no token fetch for a refused proof")
}

func TestMockDPoPInvalidTokenRefreshesOnce(t *testing.T) {
	srv := startMock(t)
	key := newP256(t)
	var rec tokenRecorder
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(dpopCC(srv, "/dpop/nonce/token"), reauth.OAuth2Options{HTTPClient: hc, DPoP: key, OnToken: rec.onToken})
	})
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 1)
	require.Equal(t, "DPoP", rec.last().TokenType)
	require.True(t, srv.RevokeAccessToken(rec.last().AccessToken))
	srv.ResetRequests()
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 2)
	assert.Equal(t, []int{200}, statuses(srv.RequestsTo("/dpop/nonce/token")), "one refresh; the endpoint's nonce is remembered")
	res := srv.RequestsTo("/dpop/nonce/resource")
	assert.Equal(t, []int{401, 200, 200}, statuses(res))
	require.Len(t, res, 3)
	assert.NotEqual(t, res[0].Credential, res[1].Credential, "the retry carried the new token")
}

func TestMockPrivateKeyJWT(t *testing.T) {
	for _, tc := range []struct {
		name            string
		key             crypto.Signer
		dpop            bool
		token, resource string
	}{
		{"ES256 without DPoP", newP256(t), false, "/oauth2/token", "/oauth2/resource"},
		{"EdDSA with DPoP", edKey(t), true, "/dpop/nonce/token", "/dpop/nonce/resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startMock(t, func(c *mockserver.Config) {
				c.OAuth2.ClientKeys = map[string]crypto.PublicKey{"jwt-client": tc.key.Public()}
			})
			opts := reauth.OAuth2Options{ClientKey: tc.key, ClientKeyID: "k1"}
			if tc.dpop {
				opts.DPoP = newP256(t)
			}
			cfg := &clientcredentials.Config{ClientID: "jwt-client", TokenURL: srv.URL() + tc.token}
			c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
				opts.HTTPClient = hc
				return reauth.ClientCredentials(cfg, opts)
			})
			getN(t, c, srv.URL()+tc.resource, 3)
			want := []int{200}
			if tc.dpop {
				want = []int{400, 200}
			}
			assert.Equal(t, want, statuses(srv.RequestsTo(tc.token)))
			assert.Len(t, srv.RequestsTo(tc.resource), 3+len(want)-1)
		})
	}
}

func edKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

// RefreshToken with DPoP and private_key_jwt: the rotated refresh token
// reaches OnToken, and every refresh carries a fresh assertion and proof.
func TestMockDPoPRefreshTokenWithClientKey(t *testing.T) {
	ck := edKey(t)
	srv := startMock(t, func(c *mockserver.Config) {
		c.OAuth2.ClientKeys = map[string]crypto.PublicKey{"jwt-client": ck.Public()}
		c.OAuth2.ClientCredentialsRefresh = true
		c.OAuth2.RotateRefreshTokens = true
	})
	dk := newP256(t)
	var rec tokenRecorder
	opts := reauth.OAuth2Options{DPoP: dk, ClientKey: ck, OnToken: rec.onToken}
	cc := &clientcredentials.Config{ClientID: "jwt-client", TokenURL: srv.URL() + "/dpop/nonce/token"}
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		opts.HTTPClient = hc
		return reauth.ClientCredentials(cc, opts)
	})
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 1)
	first := rec.last()
	require.NotEmpty(t, first.RefreshToken)
	srv.ResetRequests()

	cfg := &oauth2.Config{ClientID: "jwt-client", Endpoint: oauth2.Endpoint{TokenURL: srv.URL() + "/dpop/nonce/token"}}
	c = oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		opts.HTTPClient = hc
		return reauth.RefreshToken(cfg, &oauth2.Token{RefreshToken: first.RefreshToken}, opts)
	})
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 2)
	require.True(t, srv.RevokeAccessToken(rec.last().AccessToken))
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 1)
	all := rec.all()
	require.Len(t, all, 3)
	assert.NotEqual(t, all[0].RefreshToken, all[1].RefreshToken, "rotated")
	assert.NotEqual(t, all[1].RefreshToken, all[2].RefreshToken, "rotated again, and the new one was used")
	assert.Equal(t, []int{400, 200, 200}, statuses(srv.RequestsTo("/dpop/nonce/token")))
	assert.Equal(t, []int{401, 200, 200, 401, 200}, statuses(srv.RequestsTo("/dpop/nonce/resource")))
}

func TestMockDPoPBearerTokenIsRefusedUnlessAllowed(t *testing.T) {
	srv := startMock(t)
	key := newP256(t)
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{HTTPClient: hc, DPoP: key})
	})
	_, err := getJSON(context.Background(), c, srv.URL()+"/oauth2/resource")
	require.Error(t, err)
	assert.ErrorIs(t, err, reauth.ErrFinal)
	assert.Contains(t, err.Error(), "AllowBearerWithDPoP")
	assert.Empty(t, srv.RequestsTo("/oauth2/resource"), "a Bearer token is not sent when a bound one was asked for")

	c = oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.ClientCredentials(mockClientCredentials(srv), reauth.OAuth2Options{HTTPClient: hc, DPoP: key, AllowBearerWithDPoP: true})
	})
	getN(t, c, srv.URL()+"/oauth2/resource", 1)
	res := srv.RequestsTo("/oauth2/resource")
	require.Len(t, res, 1)
	assert.Equal(t, "Bearer", res[0].Scheme)
}

func TestMockDPoPTokenNeedsTheDPoPOption(t *testing.T) {
	srv := startMock(t)
	c := oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
		return reauth.OAuth2WithOptions(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "abc", TokenType: "DPoP"}), reauth.OAuth2Options{HTTPClient: hc})
	})
	_, err := getJSON(context.Background(), c, srv.URL()+"/dpop/resource")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OAuth2Options.DPoP")
	assert.Empty(t, srv.RequestsTo("/dpop/resource"))
}

// No key, token, secret or assertion in %v/%#v of the options and the
// credentials, nor in the Transport's log and events or the errors.
func TestDPoPPrintsNoSecret(t *testing.T) {
	ck := edKey(t)
	dk := edKey(t)
	srv := startMock(t, func(c *mockserver.Config) {
		c.OAuth2.ClientKeys = map[string]crypto.PublicKey{"jwt-client": ck.Public()}
	})
	var logs bytes.Buffer
	var events []string
	var mu sync.Mutex
	opts := reauth.OAuth2Options{DPoP: dk, ClientKey: ck, ClientKeyID: "kid-1"}
	var rec tokenRecorder
	opts.OnToken = rec.onToken
	creds := reauth.ClientCredentials(&clientcredentials.Config{ClientID: "jwt-client", TokenURL: srv.URL() + "/dpop/nonce/token"}, opts)
	tr := &reauth.Transport{
		Credentials: creds, Origins: []string{srv.URL()},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: func(e reauth.Event) {
			mu.Lock()
			events = append(events, fmt.Sprintf("%+v", e))
			mu.Unlock()
		},
	}
	c := &http.Client{Transport: tr}
	getN(t, c, srv.URL()+"/dpop/nonce/resource", 2)
	// A refused proof, for an error to look at.
	c2 := &http.Client{Transport: &reauth.Transport{Base: &replayProof{base: http.DefaultTransport, path: "/dpop/nonce/resource"}, Credentials: creds, Origins: []string{srv.URL()}}}
	getN(t, c2, srv.URL()+"/dpop/nonce/resource", 1)
	_, err := getJSON(context.Background(), c2, srv.URL()+"/dpop/nonce/resource")
	require.Error(t, err)

	out := strings.Join([]string{
		fmt.Sprintf("%v %+v %#v", opts, opts, opts),
		fmt.Sprintf("%v %+v %#v", &opts, &opts, &opts),
		fmt.Sprintf("%v %+v %#v", creds, creds, creds),
		fmt.Sprintf("%v %+v %#v", tr, tr, tr),
		err.Error(), fmt.Sprintf("%+v", err), logs.String(), strings.Join(events, "\n"),
	}, "\n")
	for name, secret := range map[string]string{
		"DPoP key %v": fmt.Sprint([]byte(dk)), "DPoP key %#v": fmt.Sprintf("%#v", []byte(dk)),
		"client key %v": fmt.Sprint([]byte(ck)), "client key %#v": fmt.Sprintf("%#v", []byte(ck)),
		"DPoP seed": fmt.Sprintf("%x", dk.Seed()), "client seed": fmt.Sprintf("%x", ck.Seed()),
		"access token": rec.last().AccessToken,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the output shows the %s", name)
		}
	}
	if errors.Is(err, reauth.ErrInvalidDPoPProof) == false {
		t.Errorf("the replayed proof's refusal does not match ErrInvalidDPoPProof")
	}
}

// A resource that accepts each nonce once and hands out the next one with
// every 200 (RFC 9449 §8.2): the steady state is one request per call only
// if the nonce of each 200 is remembered.
func TestDPoPNonceOfEvery200IsUsed(t *testing.T) {
	var mu sync.Mutex
	seq, statusLog := 0, []int{}
	current := "n0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var claims struct {
			Nonce string `json:"nonce"`
		}
		parts := strings.Split(r.Header.Get("DPoP"), ".")
		if len(parts) == 3 {
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(b, &claims)
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "DPoP ") || claims.Nonce != current {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.Header().Set("DPoP-Nonce", current)
			w.WriteHeader(http.StatusUnauthorized)
			statusLog = append(statusLog, 401)
			return
		}
		seq++
		current = fmt.Sprintf("n%d", seq)
		w.Header().Set("DPoP-Nonce", current)
		statusLog = append(statusLog, 200)
	}))
	t.Cleanup(srv.Close)
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bound", TokenType: "DPoP"})
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.OAuth2WithOptions(src, reauth.OAuth2Options{DPoP: newP256(t)}),
		Origins:     []string{srv.URL},
	}}
	for range 3 {
		resp, err := c.Get(srv.URL + "/r?q=1")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{401, 200, 200, 200}, statusLog)
}

// proofClaims decodes the claims of the DPoP proof req carries (the
// signature is the mock's and oidc-provider's to check).
func proofClaims(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	parts := strings.Split(req.Header.Get("DPoP"), ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

// Nonces are kept per origin and only when RFC 9449 §8.1 allows them: one
// origin cannot set the nonce another receives, nor write a quote into the
// signed claims. The htu of a request with a query has neither query nor
// fragment.
func TestDPoPNoncesArePerOriginAndChecked(t *testing.T) {
	type seen struct{ nonce, htu string }
	var mu sync.Mutex
	got := map[string][]seen{}
	server := func(name string, nonces ...string) *httptest.Server {
		i := 0
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := proofClaims(t, r)
			mu.Lock()
			defer mu.Unlock()
			n, _ := c["nonce"].(string)
			htu, _ := c["htu"].(string)
			got[name] = append(got[name], seen{n, htu})
			if i < len(nonces) {
				w.Header().Set("DPoP-Nonce", nonces[i])
				i++
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	a := server("a", "nonce-of-a", `bad"nonce`)
	b := server("b")
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bound", TokenType: "DPoP"})
	c := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.OAuth2WithOptions(src, reauth.OAuth2Options{DPoP: newP256(t)}),
		Origins:     []string{a.URL, b.URL},
	}}
	for _, u := range []string{a.URL + "/x?secret=1#frag", b.URL + "/y", a.URL + "/x", a.URL + "/x"} {
		resp, err := c.Get(u)
		require.NoError(t, err)
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []seen{{"", a.URL + "/x"}, {"nonce-of-a", a.URL + "/x"}, {"nonce-of-a", a.URL + "/x"}}, got["a"],
		"a's nonce goes back to a; a nonce with a quote is not taken; no query in htu")
	assert.Equal(t, []seen{{"", b.URL + "/y"}}, got["b"], "a's nonce never goes to b")
}

// DPoP proofs are for resource servers: DPoP credentials on the proxy leg
// are a configuration error, before any token is fetched.
func TestDPoPCredentialsRefuseTheProxyLeg(t *testing.T) {
	var fetched bool
	src := oauth2.TokenSource(tokenSourceFunc(func() (*oauth2.Token, error) {
		fetched = true
		return &oauth2.Token{AccessToken: "bound", TokenType: "DPoP"}, nil
	}))
	creds := reauth.OAuth2WithOptions(src, reauth.OAuth2Options{DPoP: newP256(t)})
	req, err := http.NewRequest(http.MethodGet, "http://origin.invalid/", nil)
	require.NoError(t, err)
	proxy, err := url.Parse("http://proxy.invalid:3128")
	require.NoError(t, err)
	err = creds.Authorize(reauth.NewAuthRequest(req, proxy, nil))
	assert.ErrorIs(t, err, reauth.ErrConfig)
	assert.False(t, fetched)
	assert.Empty(t, req.Header.Get("Proxy-Authorization"))
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// DPoP-bound tokens shared through a TokenStore: a second process with the
// same key takes the stored token (no token request of its own); one with
// another key does not, since the token is bound to the first key (RFC 9449
// §6): the key's thumbprint is part of the stored token's identity.
func TestMockDPoPTokensSharedThroughAStoreStayWithTheirKey(t *testing.T) {
	srv := startMock(t)
	store, err := reauth.NewFileStore(t.TempDir() + "/tokens")
	require.NoError(t, err)
	key, other := newP256(t), newP256(t)
	client := func(k crypto.Signer) *http.Client {
		return oauth2Client(t, srv, func(hc *http.Client) reauth.Credentials {
			return reauth.ClientCredentials(dpopCC(srv, "/dpop/token"), reauth.OAuth2Options{HTTPClient: hc, DPoP: k, Store: store})
		})
	}
	getN(t, client(key), srv.URL()+"/dpop/resource", 1)
	require.Len(t, srv.RequestsTo("/dpop/token"), 1)

	getN(t, client(key), srv.URL()+"/dpop/resource", 1)
	assert.Len(t, srv.RequestsTo("/dpop/token"), 1, "the same key: the stored token is taken")

	getN(t, client(other), srv.URL()+"/dpop/resource", 1)
	assert.Len(t, srv.RequestsTo("/dpop/token"), 2, "another key: a token of its own")
	for _, r := range srv.RequestsTo("/dpop/resource") {
		assert.Equal(t, http.StatusOK, r.Status, "no request carried a token bound to another key")
	}
}
