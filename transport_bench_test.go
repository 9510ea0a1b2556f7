package reauth

import (
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

// nopBase answers every request with 200 without I/O, so that the benchmarks
// measure the Transport's own cost.
type nopBase struct{ resp http.Response }

func (b *nopBase) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := b.resp
	resp.Request = r
	return &resp, nil
}

func newNopBase() *nopBase {
	return &nopBase{resp: http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}}
}

// BenchmarkRoundTrip measures the happy path with credentials already cached,
// against oauth2.Transport doing the same job, in the same run.
func BenchmarkRoundTrip(b *testing.B) {
	const origin = "https://api.example.com"
	req, _ := http.NewRequest("GET", origin+"/v1/items", nil)
	req.Header.Set("Accept", "application/json")

	basic := Basic("alice", "secret")
	basicT := &Transport{Base: newNopBase(), Credentials: basic, Origins: []string{origin}}
	// Teach it the protection space, as the first challenge would.
	_, _ = basic.Answer(&AuthRequest{Request: req}, &Refusal{StatusCode: 401, Challenges: []Challenge{{Scheme: "Basic"}}})

	cases := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", newNopBase()},
		{"oauth2.Transport", &oauth2.Transport{Base: newNopBase(), Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "Bearer"})}},
		{"reauth/Bearer", &Transport{Base: newNopBase(), Credentials: Bearer("tok"), Origins: []string{origin}}},
		{"reauth/Basic", basicT},
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
