package reauth

import (
	"net/http"
	"testing"
	"unsafe"

	"golang.org/x/oauth2"
)

// nopBase answers every request with 200 without I/O, so that the benchmarks
// measure the Transport's own cost. With challenge set, a request without
// Authorization gets 401 and that challenge instead, as from a server.
type nopBase struct {
	resp      http.Response
	challenge http.Header
}

func (b *nopBase) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := b.resp
	resp.Request = r
	if b.challenge != nil && r.Header.Get("Authorization") == "" {
		resp.StatusCode, resp.Header = http.StatusUnauthorized, b.challenge
	}
	return &resp, nil
}

func newNopBase() *nopBase {
	return &nopBase{resp: http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}}
}

// BenchmarkRoundTrip measures the happy path with credentials already cached,
// against oauth2.Transport doing the same job, in the same run. bench/ (a
// module of its own) has the side-by-side comparisons over loopback.
func BenchmarkRoundTrip(b *testing.B) {
	const origin = "https://api.example.com"
	req, _ := http.NewRequest("GET", origin+"/v1/items", nil)
	req.Header.Set("Accept", "application/json")

	basic := Basic("alice", "secret")
	basicT := &Transport{Base: newNopBase(), Credentials: basic, Origins: []string{origin}}
	// Teach it the protection space, as the first challenge would.
	_, _ = answerValue(basic, originAuthRequest(req), "", &Refusal{StatusCode: 401, Challenges: []Challenge{{Scheme: "Basic"}}})

	digestBase := newNopBase()
	digestBase.challenge = http.Header{"Www-Authenticate": {`Digest realm="api", qop="auth", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"`}}
	digestT := &Transport{Base: digestBase, Credentials: Digest("alice", "secret"), Origins: []string{origin}}
	// The first request is challenged; from then on the answer goes up front.
	if resp, err := digestT.RoundTrip(req); err != nil || resp.StatusCode != 200 {
		b.Fatal(resp, err)
	}
	token := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "Bearer"})

	cases := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", newNopBase()},
		{"oauth2.Transport", &oauth2.Transport{Base: newNopBase(), Source: token}},
		{"reauth/Bearer", &Transport{Base: newNopBase(), Credentials: Bearer("tok"), Origins: []string{origin}}},
		{"reauth/OAuth2", &Transport{Base: newNopBase(), Credentials: OAuth2(token), Origins: []string{origin}}},
		{"reauth/Basic", basicT},
		{"reauth/Digest", digestT},
		{"reauth/unbound", &Transport{Base: newNopBase(), Credentials: Bearer("tok"), Origins: []string{"https://elsewhere.example.com"}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.rt.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
				if resp.Request.Header.Get("Authorization") == "" && c.name != "bare" && c.name != "reauth/unbound" {
					b.Fatal("no credentials sent")
				}
			}
		})
	}
}

// TestRoundTripAllocs guards bench §2's budget in go test: the happy path of
// a RoundTrip allocates no more than oauth2.Transport's, and the exchange
// stays in the 160-byte size class it had before the seam (its one
// allocation per call).
func TestRoundTripAllocs(t *testing.T) {
	const origin = "https://api.example.com"
	req, _ := http.NewRequest("GET", origin+"/v1/items", nil)
	req.Header.Set("Accept", "application/json")
	token := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "Bearer"})
	allocs := func(rt http.RoundTripper) float64 {
		return testing.AllocsPerRun(200, func() {
			if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
				t.Fatal(err)
			}
		})
	}
	budget := allocs(&oauth2.Transport{Base: newNopBase(), Source: token})
	for name, rt := range map[string]http.RoundTripper{
		"Bearer": &Transport{Base: newNopBase(), Credentials: Bearer("tok"), Origins: []string{origin}},
		"OAuth2": &Transport{Base: newNopBase(), Credentials: OAuth2(token), Origins: []string{origin}},
		"Basic":  &Transport{Base: newNopBase(), Credentials: Preemptive(Basic("alice", "secret")), Origins: []string{origin}},
	} {
		if got := allocs(rt); got > budget {
			t.Errorf("reauth %s: %v allocations per RoundTrip, oauth2.Transport %v", name, got, budget)
		}
	}
	if size := unsafe.Sizeof(exchange{}); size > 160 {
		t.Errorf("exchange is %d bytes, past the 160-byte size class", size)
	}
}
