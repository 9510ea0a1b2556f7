package reauth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// nonceTokenServer is a token endpoint that requires DPoP proofs with its
// nonce (RFC 9449 §8) and checks them with the tests' own verifier.
type nonceTokenServer struct {
	t        *testing.T
	srv      *httptest.Server
	requests atomic.Int32
	rotate   bool // a new nonce with every response
	never    bool // refuses every nonce, each time with a new one
	counter  atomic.Int32

	mu       sync.Mutex
	nonce    string
	jtis     map[string]bool
	lastForm url.Values
	lastAuth string
	clientPK crypto.PublicKey // verifies client assertions, when set
}

func newNonceTokenServer(t *testing.T) *nonceTokenServer {
	s := &nonceTokenServer{t: t, nonce: "n-1", jtis: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *nonceTokenServer) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":"from the test server"}`, code)
}

func (s *nonceTokenServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastForm, s.lastAuth = form, r.Header.Get("Authorization")
	current := s.nonce
	if s.rotate {
		s.nonce = fmt.Sprintf("n-%d", s.counter.Add(1)+1)
	}
	w.Header().Set("DPoP-Nonce", s.nonce)
	if s.clientPK != nil {
		a, err := verifyJWS(form.Get("client_assertion"), s.clientPK)
		if err != nil || form.Get("client_assertion_type") != clientAssertionType || s.jtis[a.Claims["jti"].(string)] {
			s.fail(w, http.StatusUnauthorized, "invalid_client")
			return
		}
		s.jtis[a.Claims["jti"].(string)] = true
	}
	proof, err := verifyJWS(r.Header.Get("DPoP"), nil)
	if err != nil || proof.Header["typ"] != "dpop+jwt" || proof.Claims["htm"] != "POST" ||
		proof.Claims["htu"] != s.srv.URL+"/token" || proof.Claims["ath"] != nil || s.jtis[proof.Claims["jti"].(string)] {
		s.fail(w, http.StatusBadRequest, "invalid_dpop_proof")
		return
	}
	s.jtis[proof.Claims["jti"].(string)] = true
	if proof.Claims["nonce"] != current || s.never {
		s.fail(w, http.StatusBadRequest, "use_dpop_nonce")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"access_token":"at-1","token_type":"DPoP","expires_in":300}`)
}

func dpopTokenRequest(t *testing.T, endpoint string) *http.Request {
	req, err := http.NewRequest("POST", endpoint, strings.NewReader("grant_type=client_credentials&client_id=c1&client_secret=s3cr3t"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestTokenTransportRetriesOnceWithTheServersNonce(t *testing.T) {
	s := newNonceTokenServer(t)
	tt := &tokenTransport{dpop: dpopTestKey(t, "ES256")}
	resp, err := tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token?tenant=1"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, int32(2), s.requests.Load(), "the first fetch: one refused for its nonce, one retried")

	for range 3 {
		resp, err = tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token?tenant=1"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, int32(5), s.requests.Load(), "afterwards one request per fetch: the nonce is remembered")
}

func TestTokenTransportNeverRetriesTwice(t *testing.T) {
	s := newNonceTokenServer(t)
	s.rotate, s.never = true, true
	tt := &tokenTransport{dpop: dpopTestKey(t, "EdDSA")}
	resp, err := tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.JSONEq(t, `{"error":"use_dpop_nonce","error_description":"from the test server"}`, string(body), "the caller reads the whole answer")
	assert.Equal(t, int32(2), s.requests.Load(), "one retry, never two")
}

func TestTokenTransportRetriesOnlyUseDPoPNonce(t *testing.T) {
	for _, tc := range []struct {
		name, code, nonce string
		status            int
	}{
		{"another error with a nonce", "invalid_grant", "n-2", http.StatusBadRequest},
		{"use_dpop_nonce without a nonce", "use_dpop_nonce", "", http.StatusBadRequest},
		{"use_dpop_nonce with a nonce that is not NQCHAR", "use_dpop_nonce", "bad nonce", http.StatusBadRequest},
		{"use_dpop_nonce in a 401", "use_dpop_nonce", "n-2", http.StatusUnauthorized},
		{"use_dpop_nonce with the nonce the proof had", "use_dpop_nonce", "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if tc.nonce != "" {
					w.Header().Set("DPoP-Nonce", tc.nonce)
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"error":%q}`, tc.code)
			}))
			defer srv.Close()
			tt := &tokenTransport{dpop: dpopTestKey(t, "ES256")}
			resp, err := tt.RoundTrip(dpopTokenRequest(t, srv.URL))
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, string(body), tc.code)
			assert.Equal(t, int32(1), n.Load())
		})
	}
}

func TestTokenTransportDoesNotRetryTheSameNonce(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("DPoP-Nonce", "same")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"use_dpop_nonce"}`)
	}))
	defer srv.Close()
	tt := &tokenTransport{dpop: dpopTestKey(t, "ES256")}
	for i, want := range []int32{2, 3} {
		resp, err := tt.RoundTrip(dpopTokenRequest(t, srv.URL))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, n.Load(), "fetch %d: a nonce the proof already carried is not sent again", i+1)
	}
}

func TestTokenTransportRemembersNoncesPerEndpoint(t *testing.T) {
	a, b := newNonceTokenServer(t), newNonceTokenServer(t)
	b.nonce = "other"
	tt := &tokenTransport{dpop: dpopTestKey(t, "ES256")}
	for _, s := range []*nonceTokenServer{a, b, a, b} {
		resp, err := tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, int32(3), a.requests.Load())
	assert.Equal(t, int32(3), b.requests.Load())
}

func TestTokenTransportSendsAFreshClientAssertion(t *testing.T) {
	s := newNonceTokenServer(t)
	key := dpopTestKey(t, "PS256")
	s.clientPK = key.Public()
	tt := &tokenTransport{dpop: dpopTestKey(t, "ES256"), client: &clientKey{key: key, keyID: "k1", clientID: "c1"}}
	req := dpopTokenRequest(t, s.srv.URL+"/token")
	req.SetBasicAuth("c1", "s3cr3t")
	resp, err := tt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the retry carries a new assertion: the server refuses a jti it has seen")
	assert.Equal(t, int32(2), s.requests.Load())

	s.mu.Lock()
	defer s.mu.Unlock()
	assert.NotContains(t, s.lastForm, "client_secret", "the assertion replaces the secret")
	assert.Empty(t, s.lastAuth, "and the Basic field")
	assert.Equal(t, "c1", s.lastForm.Get("client_id"))
	a, err := verifyJWS(s.lastForm.Get("client_assertion"), key.Public())
	require.NoError(t, err)
	assert.Equal(t, s.srv.URL+"/token", a.Claims["aud"])
	assert.Equal(t, "Basic YzE6czNjcjN0", req.Header.Get("Authorization"), "the caller's request is not changed")
}

func TestTokenTransportClientAssertionWithoutDPoP(t *testing.T) {
	var got url.Values
	var proof string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		got, proof = r.PostForm, r.Header.Get("DPoP")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer"}`)
	}))
	defer srv.Close()
	key := dpopTestKey(t, "EdDSA")
	tt := &tokenTransport{client: &clientKey{key: key, clientID: "c1"}}
	resp, err := tt.RoundTrip(dpopTokenRequest(t, srv.URL))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, proof)
	_, err = verifyJWS(got.Get("client_assertion"), key.Public())
	assert.NoError(t, err)
}

// TestTokenTransportUnderXOAuth2 is the way the transport is used: as the
// client x/oauth2 fetches tokens with.
func TestTokenTransportUnderXOAuth2(t *testing.T) {
	s := newNonceTokenServer(t)
	key := dpopTestKey(t, "ES256")
	s.clientPK = key.Public()
	hc := &http.Client{Transport: &tokenTransport{dpop: dpopTestKey(t, "EdDSA"), client: &clientKey{key: key, clientID: "c1"}}}
	cfg := &clientcredentials.Config{ClientID: "c1", TokenURL: s.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	for i, want := range []int32{2, 3} {
		tok, err := cfg.Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, "DPoP", tok.TokenType)
		assert.Equal(t, want, s.requests.Load(), "fetch %d", i+1)
	}
}

func TestTokenTransportConcurrentRotatingNonceDoesNotLoop(t *testing.T) {
	s := newNonceTokenServer(t)
	s.rotate = true
	tt := &tokenTransport{dpop: dpopTestKey(t, "ES256")}
	const calls = 40
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			resp, err := tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token"))
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, s.requests.Load(), int32(2*calls), "at most one retry per call")
}

func TestTokenTransportBoundsTheBody(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer srv.Close()
	req, err := http.NewRequest("POST", srv.URL, strings.NewReader(strings.Repeat("a", maxTokenRequestBody+1)))
	require.NoError(t, err)
	_, err = (&tokenTransport{dpop: dpopTestKey(t, "ES256")}).RoundTrip(req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than 64 KiB")
	assert.Equal(t, int32(0), n.Load())

	_, err = (&tokenTransport{client: &clientKey{key: dpopTestKey(t, "ES256"), clientID: "c"}}).RoundTrip(dpopPost(t, srv.URL, "%zz=s3cr3t"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.Equal(t, int32(0), n.Load())
}

func dpopPost(t *testing.T, u, body string) *http.Request {
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	require.NoError(t, err)
	return req
}

// brokenBodyReader fails when read.
type brokenBodyReader struct{}

func (brokenBodyReader) Read([]byte) (int, error) { return 0, errors.New("broken body") }

func TestTokenTransportBodyReadError(t *testing.T) {
	req, err := http.NewRequest("POST", "http://127.0.0.1:1/token", io.NopCloser(brokenBodyReader{}))
	require.NoError(t, err)
	_, err = (&tokenTransport{dpop: dpopTestKey(t, "ES256")}).RoundTrip(req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken body")
}

func TestTokenTransportPrintsNoKey(t *testing.T) {
	ed := dpopTestKey(t, "EdDSA").(ed25519.PrivateKey)
	ck := &clientKey{key: ed, keyID: "k1", clientID: "c1"}
	tt := &tokenTransport{dpop: ed, client: ck}
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", tt, tt, tt, tt),
		fmt.Sprintf("%v %+v %#v %s", ck, ck, ck, ck),
		fmt.Sprintf("%v %+v %#v", *ck, *ck, *ck),
	} {
		seed := []byte(ed[:8])
		for _, secret := range []string{
			strings.Trim(fmt.Sprintf("%v", seed), "[]"),                                      // 154 23 1 …
			strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", seed), "[]byte{"), "}"), // 0x9a, 0x17, …
			fmt.Sprintf("%x", seed),
		} {
			assert.NotContains(t, s, secret)
		}
	}
	assert.Equal(t, `reauth token transport with DPoP for private_key_jwt client "c1" (kid "k1")`, tt.String())
}

// TestTokenTransportRemembersNoncesFromSuccesses: a server that hands out
// the next nonce with every answer, 200s included, costs one request per
// fetch once the first nonce is known.
func TestTokenTransportRemembersNoncesFromSuccesses(t *testing.T) {
	s := newNonceTokenServer(t)
	s.rotate = true
	tt := &tokenTransport{dpop: dpopTestKey(t, "EdDSA")}
	for range 4 {
		resp, err := tt.RoundTrip(dpopTokenRequest(t, s.srv.URL+"/token"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, int32(5), s.requests.Load(), "2 for the first fetch, then 1 each")
}
