package reauth_test

// The proof that the seam is public: a scheme written outside the package,
// with exported API only, that sets two header fields per attempt, signs
// the body, answers a nonce-style challenge by sending the same token with a
// new proof (as DPoP's use_dpop_nonce asks, RFC 9449 §8), and learns the
// next nonce from the final response. The servers are httptest handlers:
// the proof protocol is this test's own, checked by the server with its own
// code (no reauth parser on that side).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/reauth/reauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proofKey is the secret both sides share; proofTokens are the bearer-like
// tokens the scheme holds, the next one used after an invalid_token.
const proofKey = "proof-key-SENTINEL-9f2c"

var proofTokens = []string{"proof-token-SENTINEL-one", "proof-token-SENTINEL-two", "proof-token-SENTINEL-three"}

// proofCredentials is the external scheme. Authorization: Proof <token>
// (a secret: Set) and Proof: jti=…, nonce=…, sig=… (an HMAC over the
// method, URL, nonce, jti and body hash: SetProof).
type proofCredentials struct {
	mu     sync.Mutex
	token  int                      // index into proofTokens
	nonces map[reauth.Origin]string // the server's current nonce, per origin
	jti    int
}

// proofState is what one request keeps across its attempts: the token it
// sent, for compare-and-replace after an invalid_token.
type proofState struct{ token int }

func (c *proofCredentials) Authorize(r *reauth.AuthRequest) error {
	body, err := r.Body()
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, _ := r.State.(*proofState)
	if st == nil {
		st = &proofState{token: c.token}
		r.State = st
	}
	nonce := c.nonces[r.Origin()]
	c.jti++
	jti := fmt.Sprintf("j%d", c.jti)
	c.mu.Unlock()
	req := r.Request()
	r.Set("Authorization", "Proof "+proofTokens[st.token])
	r.SetProof("Proof", fmt.Sprintf("jti=%s, nonce=%s, sig=%s", jti, nonce, proofSig(req.Method, req.URL.String(), nonce, jti, body)))
	return nil
}

func (c *proofCredentials) Refused(r *reauth.AuthRequest, ref *reauth.Refusal) (reauth.Retry, error) {
	var code string
	for _, ch := range ref.Challenges {
		if ch.Is("Proof") {
			code = ch.Param("error")
		}
	}
	switch code {
	case "use_nonce":
		// The same token again with a proof for the new nonce.
		c.learn(r.Origin(), ref.Header.Get("Proof-Nonce"))
		return reauth.RetryNonce, nil
	case "invalid_token":
		if ref.Allowed&reauth.RetryChallenge == 0 {
			return reauth.RetryChallenge, nil // the ceiling refuses it: replace nothing
		}
		st := r.State.(*proofState)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.token == st.token && c.token+1 < len(proofTokens) {
			c.token++ // compare-and-replace
		}
		if c.token == st.token {
			return 0, fmt.Errorf("%w: the proof scheme has no other token", reauth.ErrNoCredentials)
		}
		st.token = c.token
		return reauth.RetryChallenge, nil
	}
	return 0, nil
}

func (c *proofCredentials) Observe(r *reauth.AuthRequest, resp *http.Response) error {
	c.learn(r.Origin(), resp.Header.Get("Proof-Nonce"))
	return nil
}

func (c *proofCredentials) learn(o reauth.Origin, nonce string) {
	if nonce == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonces == nil {
		c.nonces = make(map[reauth.Origin]string)
	}
	c.nonces[o] = nonce
}

func proofSig(method, url, nonce, jti string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, []byte(proofKey))
	fmt.Fprintf(m, "%s\n%s\n%s\n%s\n%x", method, url, nonce, jti, sum)
	return hex.EncodeToString(m.Sum(nil))
}

// proofServer checks the proof protocol with its own code and counts the
// requests. mode says how it misbehaves.
type proofServer struct {
	*httptest.Server
	mode string // "" honest; "nonce-forever"; "token-forever"; "alternate"

	mu       sync.Mutex
	requests int
	nonce    int
	seen     map[string]bool // every (Authorization, Proof) pair received
	resent   int             // pairs received twice
	badSig   int
	tokens   map[string]bool // tokens the server takes
	lastBody string
}

func newProofServer(t *testing.T, mode string) *proofServer {
	s := &proofServer{mode: mode, seen: map[string]bool{}, tokens: map[string]bool{proofTokens[0]: true}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *proofServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.lastBody = string(body)
	authz, proof := r.Header.Get("Authorization"), r.Header.Get("Proof")
	pair := authz + "\x00" + proof
	if s.seen[pair] {
		s.resent++
	}
	s.seen[pair] = true
	current := fmt.Sprintf("n%d", s.nonce)
	refuse := func(code string) {
		if code == "use_nonce" {
			s.nonce++
			w.Header().Set("Proof-Nonce", fmt.Sprintf("n%d", s.nonce))
		}
		w.Header().Set("WWW-Authenticate", `Proof error="`+code+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}
	switch s.mode {
	case "nonce-forever":
		refuse("use_nonce")
		return
	case "token-forever":
		refuse("invalid_token")
		return
	case "alternate":
		if s.requests%2 == 1 {
			refuse("use_nonce")
		} else {
			refuse("invalid_token")
		}
		return
	}
	token, ok := strings.CutPrefix(authz, "Proof ")
	if !ok {
		refuse("invalid_token")
		return
	}
	var jti, nonce, sig string
	for _, kv := range strings.Split(proof, ", ") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "jti":
			jti = v
		case "nonce":
			nonce = v
		case "sig":
			sig = v
		}
	}
	if nonce != current {
		refuse("use_nonce")
		return
	}
	if sig != proofSig(r.Method, "http://"+r.Host+r.URL.RequestURI(), nonce, jti, body) {
		s.badSig++
		refuse("invalid_proof")
		return
	}
	if !s.tokens[token] {
		refuse("invalid_token")
		return
	}
	w.Header().Set("Proof-Nonce", current)
	io.WriteString(w, "ok")
}

func (s *proofServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TestExternalSchemeWithTwoFieldsAndANonce runs the external scheme through
// the Transport: two fields per attempt, the body signed, a use_nonce
// answered with the same token and a new proof (a new set of fields: not
// ErrSameCredentials), the nonce learned from the final response, and no
// secret in what the caller sees.
func TestExternalSchemeWithTwoFieldsAndANonce(t *testing.T) {
	srv := newProofServer(t, "")
	var events []reauth.Event
	var evMu sync.Mutex
	creds := &proofCredentials{}
	client := &http.Client{Transport: &reauth.Transport{
		Credentials: creds,
		Origins:     []string{srv.URL},
		OnEvent: func(e reauth.Event) {
			evMu.Lock()
			events = append(events, e)
			evMu.Unlock()
		},
	}}

	// A body with no GetBody: the Transport buffers it, the scheme signs it.
	body := io.NopCloser(strings.NewReader(`{"item":"signed"}`))
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/items", body)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(got))
	assert.Equal(t, 2, srv.count(), "no nonce yet: refused with use_nonce, then the same token with a new proof")
	assert.Equal(t, `{"item":"signed"}`, srv.lastBody, "the retry carries the whole body")

	// The nonce came with the 200 (Observe): one request from now on.
	for range 3 {
		resp, err := client.Get(srv.URL + "/items")
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.Equal(t, 5, srv.count())
	srv.mu.Lock()
	assert.Zero(t, srv.resent, "no set of fields is received twice")
	assert.Zero(t, srv.badSig)
	srv.mu.Unlock()

	evMu.Lock()
	defer evMu.Unlock()
	require.NotEmpty(t, events)
	for _, e := range events {
		reauth.AssertNoSecret(t, "an event", fmt.Sprintf("%+v", e))
	}
}

// TestExternalSchemeKeepsTheInvariants: against servers that keep refusing,
// the external scheme's requests stay within the ceiling (counted at the
// server), no set of fields is sent twice, and the error says why without
// a secret; over plain http to a host that is not loopback the token is not
// sent at all.
func TestExternalSchemeKeepsTheInvariants(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		want   int   // requests the server sees
		reason error // the *UnauthorizedError's reason
	}{
		{"nonce-forever", 2, reauth.ErrRefusedAfterRetry}, // one nonce retry, then the same kind again
		{"token-forever", 2, reauth.ErrRefusedAfterRetry}, // one new token, then the same kind again
		{"alternate", 3, reauth.ErrRefusedAfterRetry},     // one of each kind, then no more
	} {
		t.Run(tc.mode, func(t *testing.T) {
			srv := newProofServer(t, tc.mode)
			tr := &reauth.Transport{Credentials: &proofCredentials{}, Origins: []string{srv.URL}}
			_, err := (&http.Client{Transport: tr}).Get(srv.URL + "/items")
			var ue *reauth.UnauthorizedError
			require.ErrorAs(t, err, &ue)
			assert.ErrorIs(t, err, tc.reason)
			assert.LessOrEqual(t, srv.count(), 3, "the retry ceiling: at most 3 requests for the origin leg")
			assert.Equal(t, tc.want, srv.count())
			srv.mu.Lock()
			assert.Zero(t, srv.resent, "no refused set of fields is sent again")
			srv.mu.Unlock()
			reauth.AssertNoSecret(t, "the error", err.Error())
			reauth.AssertNoSecret(t, "the error's fields", fmt.Sprintf("%+v", *ue))
		})
	}

	t.Run("plain http", func(t *testing.T) {
		sent := false
		tr := &reauth.Transport{
			Credentials: &proofCredentials{},
			Origins:     []string{"http://api.example.test"},
			Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
				sent = true
				return nil, errors.New("must not be dialed")
			}),
		}
		req, _ := http.NewRequest(http.MethodGet, "http://api.example.test/items", nil)
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, reauth.ErrInsecureCredentials, "a token set with Set does not cross plain http")
		assert.False(t, sent)
	})
}
