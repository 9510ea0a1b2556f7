package negotiate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/reauth/reauth"
)

// acceptor is an in-process Negotiate server: it answers a request without
// a token with 401 Negotiate, and one with a token whose authenticator
// decrypts under key with 200 and its AP-REP (or, per mode, no token, a
// forged AP-REP, or 401 forever). It counts requests and records tokens.
type acceptor struct {
	t    *testing.T
	key  types.EncryptionKey
	mode string // "", "silent", "forged", "refuse"
	// proxy makes it a forward proxy: Proxy-Authorization, 407 and
	// Proxy-Authenticate instead of the origin's fields.
	proxy bool

	requests atomic.Int32
	mu       sync.Mutex
	tokens   map[string]bool
	repeated bool
}

func (a *acceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	field, challenge, status := "Authorization", "WWW-Authenticate", http.StatusUnauthorized
	if a.proxy {
		field, challenge, status = "Proxy-Authorization", "Proxy-Authenticate", http.StatusProxyAuthRequired
	}
	tok, ok := strings.CutPrefix(r.Header.Get(field), "Negotiate ")
	if ok {
		a.mu.Lock()
		a.repeated = a.repeated || a.tokens[tok]
		a.tokens[tok] = true
		a.mu.Unlock()
	}
	if !ok || a.mode == "refuse" {
		w.Header().Set(challenge, "Negotiate")
		w.WriteHeader(status)
		return
	}
	auth := acceptedAPReq(a.t, tok, a.key).Authenticator
	switch a.mode {
	case "":
		rep := apRepToken(a.t, a.key, auth.CTime, auth.Cusec, 0, gssapi.OIDKRB5.OID())
		w.Header().Set(challenge, "Negotiate "+base64.StdEncoding.EncodeToString(rep))
	case "forged":
		rep := apRepToken(a.t, randomKey(a.t), auth.CTime, auth.Cusec, 0, gssapi.OIDKRB5.OID())
		w.Header().Set(challenge, "Negotiate "+base64.StdEncoding.EncodeToString(rep))
	}
	_, _ = fmt.Fprint(w, "ok")
}

// roundTrip drives a negotiator as the Transport will through the seam:
// Authorize before each attempt, Refused after a 401 (at most one retry),
// Observe on the response that ends the request.
func roundTrip(t *testing.T, n *negotiator, c *http.Client, u *url.URL, preemptive bool) (int, error) {
	t.Helper()
	var st legState
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := n.authorize(context.Background(), &st, u, preemptive)
		if err != nil {
			return 0, err
		}
		if v != "" {
			req.Header.Set("Authorization", v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return resp.StatusCode, n.observe(&st, resp.Header, false)
		}
		challenges, _ := reauth.ResponseChallenges(resp)
		retry, err := n.refused(&st, u, challenges)
		if err != nil || !retry {
			return resp.StatusCode, err
		}
		if attempt == 2 {
			t.Fatal("the negotiator asked for a second retry")
		}
	}
}

func newTestNegotiator(t *testing.T, key types.EncryptionKey) *negotiator {
	t.Helper()
	n := newNegotiator(nil)
	creds := credentials.New("alice", "REAUTH.TEST")
	n.token = func(spn string) (string, *secContext, error) {
		if spn != "HTTP/127.0.0.1" {
			return "", nil, fmt.Errorf("token for %s, want HTTP/127.0.0.1", spn)
		}
		return initTokenFor(creds, spn, testTicket(t), key)
	}
	return n
}

func serve(t *testing.T, mode string) (*acceptor, *url.URL, *http.Client, types.EncryptionKey) {
	t.Helper()
	key := randomKey(t)
	a := &acceptor{t: t, key: key, mode: mode, tokens: map[string]bool{}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return a, u, srv.Client(), key
}

func TestNegotiatorTwoRequestsThenOneWhenPreemptive(t *testing.T) {
	a, u, c, key := serve(t, "")
	n := newTestNegotiator(t, key)
	n.preemptive = true

	if status, err := roundTrip(t, n, c, u, false); status != 200 || err != nil {
		t.Fatalf("first call: %d, %v", status, err)
	}
	if got := a.requests.Load(); got != 2 {
		t.Fatalf("first call: %d requests, want 2 (challenge, answer)", got)
	}
	for i := range 3 {
		before := a.requests.Load()
		if status, err := roundTrip(t, n, c, u, false); status != 200 || err != nil {
			t.Fatalf("call %d: %d, %v", i+2, status, err)
		}
		if got := a.requests.Load() - before; got != 1 {
			t.Fatalf("call %d: %d requests, want 1 (the token up front)", i+2, got)
		}
	}
	if a.repeated {
		t.Error("a token was sent twice")
	}
}

// Without the option, every call waits for the challenge.
func TestNegotiatorNotPreemptiveByDefault(t *testing.T) {
	a, u, c, key := serve(t, "")
	n := newTestNegotiator(t, key)
	for range 2 {
		if status, err := roundTrip(t, n, c, u, false); status != 200 || err != nil {
			t.Fatalf("%d, %v", status, err)
		}
	}
	if got := a.requests.Load(); got != 4 {
		t.Fatalf("%d requests for two calls, want 4", got)
	}
	// The user's Preemptive declaration sends up front even so.
	before := a.requests.Load()
	if status, err := roundTrip(t, n, c, u, true); status != 200 || err != nil || a.requests.Load()-before != 1 {
		t.Fatalf("declared preemptive: %d, %v, %d requests", status, err, a.requests.Load()-before)
	}
}

// A server that refuses every token: two requests, an error naming the
// principal, no loop.
func TestNegotiatorRefusedTokenEndsTheRequest(t *testing.T) {
	a, u, c, key := serve(t, "refuse")
	n := newTestNegotiator(t, key)
	status, err := roundTrip(t, n, c, u, false)
	if status != 401 || err == nil || !strings.Contains(err.Error(), "HTTP/127.0.0.1: the server refused the Kerberos token") {
		t.Fatalf("roundTrip = %d, %v; want 401 and a refusal error", status, err)
	}
	if got := a.requests.Load(); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
	if strings.Count(err.Error(), "reauth: ") != 1 {
		t.Errorf("error %q: want one prefix", err)
	}
}

func TestNegotiatorMutualAuthentication(t *testing.T) {
	t.Run("forged AP-REP", func(t *testing.T) {
		_, u, c, key := serve(t, "forged")
		_, err := roundTrip(t, newTestNegotiator(t, key), c, u, false)
		if !errors.Is(err, ErrMutualAuthentication) {
			t.Fatalf("err = %v, want ErrMutualAuthentication", err)
		}
	})
	t.Run("no token, not required", func(t *testing.T) {
		_, u, c, key := serve(t, "silent")
		if status, err := roundTrip(t, newTestNegotiator(t, key), c, u, false); status != 200 || err != nil {
			t.Fatalf("%d, %v; want 200", status, err)
		}
	})
	t.Run("no token, required", func(t *testing.T) {
		_, u, c, key := serve(t, "silent")
		n := newTestNegotiator(t, key)
		n.mutualRequired = true
		_, err := roundTrip(t, n, c, u, false)
		if !errors.Is(err, ErrMutualAuthentication) || !strings.Contains(err.Error(), "sent no Negotiate token") {
			t.Fatalf("err = %v, want ErrMutualAuthentication (no token)", err)
		}
	})
	t.Run("nothing sent, nothing checked", func(t *testing.T) {
		n := newTestNegotiator(t, randomKey(t))
		n.mutualRequired = true
		if err := n.observe(&legState{}, http.Header{}, false); err != nil {
			t.Fatalf("observe without a token sent: %v", err)
		}
	})
}

// The seam calls Authorize before every attempt of every leg: when the
// proxy's 407 repeats an attempt, the origin leg, whose server never saw
// (let alone refused) its token, sends a new one; never the same.
func TestNegotiatorAttemptRepeatedForAnotherLeg(t *testing.T) {
	n := newTestNegotiator(t, randomKey(t))
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}
	var st legState
	st.answer = true // the origin challenged
	first, err := n.authorize(context.Background(), &st, u, false)
	if err != nil || first == "" {
		t.Fatalf("answer: %q, %v", first, err)
	}
	second, err := n.authorize(context.Background(), &st, u, false)
	if err != nil || second == "" || second == first {
		t.Fatalf("repeated attempt: sent a token=%v, same as before=%v, err %v; want a new token", second != "", second == first, err)
	}
	if st.sent != 2 {
		t.Fatalf("sent = %d, want 2", st.sent)
	}
}

// A 401 without a Negotiate challenge is not this scheme's: declined, and
// the host is not remembered as a Negotiate host.
func TestNegotiatorDeclinesOtherSchemes(t *testing.T) {
	n := newTestNegotiator(t, randomKey(t))
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}
	chs, err := reauth.ParseChallenges(`Basic realm="x"`)
	if err != nil {
		t.Fatal(err)
	}
	var st legState
	if retry, err := n.refused(&st, u, chs); retry || err != nil {
		t.Fatalf("refused(Basic) = %v, %v; want a decline", retry, err)
	}
	if n.asked.has(originKey(u)) {
		t.Error("a Basic challenge marked the host as asking for Negotiate")
	}
}

func TestRefusalReasonNamesKRBError(t *testing.T) {
	skew := negTokenResp(t, 2, gssapi.OIDKRB5.OID(), krbErrorMech(t, errorcode.KRB_AP_ERR_SKEW))
	if got := refusalReason(base64.StdEncoding.EncodeToString(skew)); !strings.Contains(got, "KRB_AP_ERR_SKEW") {
		t.Errorf("KRB-ERROR: %q does not name KRB_AP_ERR_SKEW", got)
	}
	for _, tok := range []string{"", "%%%", base64.StdEncoding.EncodeToString([]byte("junk"))} {
		if got := refusalReason(tok); got != "the server refused the Kerberos token" {
			t.Errorf("refusalReason(%q) = %q", tok, got)
		}
	}
}

func TestOriginKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://API.example.com/x":    "https://api.example.com:443",
		"http://api.example.com:80/":   "http://api.example.com:80",
		"http://api.example.com":       "http://api.example.com:80",
		"http://127.0.0.1:3128":        "http://127.0.0.1:3128",
		"https://[2001:db8::1]:8443/p": "https://[2001:db8::1]:8443",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := originKey(u); got != want {
			t.Errorf("originKey(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestHostSetBounded(t *testing.T) {
	s := newHostSet(3)
	for i := range 10 {
		s.add(fmt.Sprintf("http://h%d:80", i))
	}
	if len(s.m) != 3 || !s.has("http://h9:80") {
		t.Fatalf("set holds %d entries (want 3) or lost the newest", len(s.m))
	}
}
