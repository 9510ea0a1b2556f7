package mockserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestLogRecordsWhatArrived(t *testing.T) {
	srv, clock := newTestServer(t)
	alice := basic("alice", "wonderland")
	get(t, srv.URL()+"/basic/", "")
	get(t, srv.URL()+"/basic/x?a=1&password=hunter2&b=2", alice)
	form := url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"builder"}}
	postForm(t, srv.URL()+"/oauth2/token", clientBasic(), form)
	postForm(t, srv.URL()+"/oauth2/token", clientBasic(), form)
	get(t, srv.URL()+"/bearer/", bearer("mock-token-read"))

	reqs := srv.Requests()
	require.Len(t, reqs, 5)
	assert.Equal(t, Request{Time: clock.Now(), Method: "GET", Path: "/basic/", Scenario: "basic", Status: 401}, reqs[0])
	assert.Equal(t, Request{
		Time: clock.Now(), Method: "GET", Path: "/basic/x", Query: "a=1&password=***&b=2", Scenario: "basic",
		Scheme: "Basic", Credential: srv.Redact(alice), Status: 200,
	}, reqs[1])
	assert.Regexp(t, `^Basic alice:\*\*\* #[0-9a-f]{8}$`, reqs[1].Credential)
	assert.Equal(t, "POST", reqs[2].Method)
	assert.Equal(t, "oauth2", reqs[2].Scenario)
	assert.Equal(t, len(form.Encode()), reqs[2].BodyLen)
	assert.Regexp(t, `^#[0-9a-f]{8}$`, reqs[2].BodyHash)
	assert.Equal(t, reqs[2].BodyHash, reqs[3].BodyHash, "equal bodies, equal fingerprints")
	assert.Equal(t, "Bearer", reqs[4].Scheme)
	assert.Equal(t, srv.Redact("Bearer mock-token-read"), reqs[4].Credential)
	assert.Empty(t, reqs[4].BodyHash)

	for _, r := range reqs {
		for _, secret := range []string{"wonderland", "builder", "hunter2", "mock-token-read", clientSecret} {
			assert.NotContains(t, fmt.Sprintf("%+v", r), secret)
		}
	}
	assert.Len(t, srv.RequestsTo("/basic/"), 2)
	srv.ResetRequests()
	assert.Empty(t, srv.Requests())
}

func TestRequestLogShowsDigestDetails(t *testing.T) {
	srv, _ := newTestServer(t)
	ch := firstChallenge(t, srv, "/digest/sha-256/")
	d := testDigest{user: "alice", password: "wonderland", method: "GET", uri: "/digest/sha-256/", nc: 2}
	auth := d.authorization(ch)
	get(t, srv.URL()+"/digest/sha-256/", auth)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Digest", reqs[1].Scheme)
	assert.Regexp(t, `^Digest username="alice" algorithm=SHA-256 qop=auth nc=00000002 nonce=#[0-9a-f]{8} #[0-9a-f]{8}$`, reqs[1].Credential)
	response, _ := d.digest(ch, "")
	assert.NotContains(t, reqs[1].Credential, response)
}

func TestRedactShowsNoSecret(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		authorization, secret, shape string
	}{
		{basic("alice", "wonderland"), "wonderland", `^Basic alice:\*\*\* #[0-9a-f]{8}$`},
		{basic("Jäsøn Doe", "Secret, or not?"), "Secret", `^Basic Jäsøn Doe:\*\*\* #[0-9a-f]{8}$`},
		{basic("bell\a", "pw-1"), "pw-1", `^Basic bell\?:\*\*\* #[0-9a-f]{8}$`},
		{"Basic bm90LWJhc2U2NA", "bm90LWJhc2U2NA", `^Basic \(malformed\) #[0-9a-f]{8}$`},
		{"Bearer eyJhbGciOi.secret.part", "secret", `^Bearer \*\*\* #[0-9a-f]{8}$`},
		{"bearer lowercase-token", "lowercase-token", `^Bearer \*\*\* #[0-9a-f]{8}$`},
		{"Negotiate YIIBhgYGKwYBBQUC", "YIIB", `^Negotiate #[0-9a-f]{8}$`},
		{`Digest username="u", response="deadbeef", nonce="n"`, "deadbeef", `^Digest username="u" nonce=#[0-9a-f]{8} #[0-9a-f]{8}$`},
		{`Basic "unterminated secret`, "secret", `^\(malformed\) #[0-9a-f]{8}$`},
		{"", "", `^$`},
	}
	for _, tt := range tests {
		got := srv.Redact(tt.authorization)
		assert.Regexp(t, tt.shape, got)
		if tt.secret != "" {
			assert.NotContains(t, got, tt.secret)
		}
	}
}

func TestRedactTellsCredentialsApart(t *testing.T) {
	srv, _ := newTestServer(t)
	assert.Equal(t, srv.Redact(basic("alice", "a")), srv.Redact(basic("alice", "a")))
	assert.NotEqual(t, srv.Redact(basic("alice", "a")), srv.Redact(basic("alice", "b")))
	assert.NotEqual(t, srv.Redact(bearer("t1")), srv.Redact(bearer("t2")))
	other, _ := newTestServer(t)
	assert.NotEqual(t, srv.Redact(bearer("t1")), other.Redact(bearer("t1")), "fingerprints are keyed per server")
}

func TestRequestIsLoggedBeforeTheResponseIsRead(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, err := http.Get(srv.URL() + "/") // the listing is larger than a write buffer
	require.NoError(t, err)
	defer resp.Body.Close()
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, 200, reqs[0].Status)
	assert.Equal(t, "listing", reqs[0].Scenario)
}

func TestRequestLogIsSafeUnderConcurrency(t *testing.T) {
	srv, _ := newTestServer(t)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 32, MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	const n = 1000
	auths := []string{"", basic("alice", "wonderland"), basic("bob", "nope"), bearer("mock-token-read")}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/basic/"+fmt.Sprint(i), nil)
			if a := auths[i%len(auths)]; a != "" {
				req.Header.Set("Authorization", a)
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if i%50 == 0 {
				srv.Requests() // readers race with writers
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	reqs := srv.Requests()
	require.Len(t, reqs, n)
	byStatus := map[int]int{}
	paths := map[string]bool{}
	for _, r := range reqs {
		byStatus[r.Status]++
		paths[r.Path] = true
	}
	assert.Equal(t, map[int]int{200: n / 4, 401: 3 * n / 4}, byStatus)
	assert.Len(t, paths, n, "every request logged once")
}

func TestRequestLogIsBounded(t *testing.T) {
	var l requestLog
	for i := range MaxLoggedRequests + 1 {
		l.add(Request{Path: fmt.Sprint(i)})
	}
	got := l.snapshot()
	assert.Len(t, got, MaxLoggedRequests-MaxLoggedRequests/10+1)
	assert.Equal(t, fmt.Sprint(MaxLoggedRequests/10), got[0].Path, "the oldest were dropped")
	assert.Equal(t, fmt.Sprint(MaxLoggedRequests), got[len(got)-1].Path)
}

func TestRequestLogRedactsSecretQueryParameters(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                   "",
		"a=1":                                "a=1",
		"access_token=abc&x=1":               "access_token=***&x=1",
		"Client_Secret=s&scope=read":         "Client_Secret=***&scope=read",
		"refresh%5Ftoken=abc":                "refresh%5Ftoken=***",
		"token":                              "token",
		"password=a&password=b":              "password=***&password=***",
		strings.Repeat("x=1&", 3) + "code=c": "x=1&x=1&x=1&code=***",
	} {
		assert.Equal(t, want, redactQuery(raw), raw)
	}
}
