package reauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Token endpoints are hostile input too: x/oauth2 parses what an OAuth2
// endpoint sends, and reauth decides what of it may go into a header and
// into an error; reauth parses a registry realm's answer itself. These
// targets hold both to the rules of DESIGN.md, invariants 7 and 8: a token goes
// out only as a header-safe Bearer value, an error is a *TokenError whose
// text is printable, bounded and free of secrets, and the response is read
// only up to its limit. Seed corpora are in testdata/fuzz/<target>.

const (
	fuzzClientSecret = "client-SENTINEL-c1e7"
	fuzzRefreshToken = "refresh-SENTINEL-0b9d"
)

// FuzzOAuth2TokenResponse answers the client credentials grant with the
// fuzzer's status, Content-Type and body.
func FuzzOAuth2TokenResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			status = 200 + (status%800+800)%800 // net/http would not deliver others
		}
		endpoint := &oneResponse{status: status, header: http.Header{"Content-Type": {contentType}}, body: body}
		cfg := &clientcredentials.Config{
			ClientID: "client", ClientSecret: fuzzClientSecret,
			TokenURL: "https://auth.example.com/token", AuthStyle: oauth2.AuthStyleInHeader,
		}
		creds := ClientCredentials(cfg, OAuth2Options{HTTPClient: &http.Client{Transport: endpoint}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		value, err := authorizeValue(creds, testAuthRequest(ctx))

		if r := endpoint.read(); r > 1<<20+1 {
			t.Fatalf("read %d bytes of the token response", r)
		}
		tokenType, accessToken := fuzzTokenFields(contentType, body)
		if err == nil {
			tok, ok := strings.CutPrefix(value, "Bearer ")
			switch {
			case !ok || tok == "" || !isVisibleASCII(tok) || len(tok) > maxAccessToken:
				t.Fatalf("sent %q, not a Bearer token of visible ASCII", value)
			case tokenType != "" && !strings.EqualFold(tokenType, "Bearer"):
				t.Fatalf("sent a token of type %q as Bearer", tokenType)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) {
			t.Fatalf("error %T is not a *TokenError: %v", err, err)
		}
		msg := err.Error()
		checkErrorText(t, msg, string(body), fuzzClientSecret)
		for _, field := range []string{te.Code, te.Description, te.URI} {
			if len(field) > maxTokenErrorField+len("…") {
				t.Fatalf("an error field of %d bytes", len(field))
			}
		}
		// The token itself never goes into the error unless the endpoint
		// also wrote it into the error fields (then it is what it said).
		if len(accessToken) >= 8 && strings.Contains(msg, accessToken) && !strings.Contains(te.Code+te.Description+te.URI, accessToken) {
			t.Fatalf("the issued token is in the error: %s", msg)
		}
		if te.StatusCode >= 400 && te.StatusCode < 500 && te.StatusCode != 408 && te.StatusCode != 429 && !errors.Is(te, ErrFinal) {
			t.Fatalf("a %d refusal is not final", te.StatusCode)
		}
		if te.StatusCode >= 500 && errors.Is(te, ErrFinal) {
			t.Fatalf("a %d outage is final", te.StatusCode)
		}
	})
}

// fuzzTokenFields reads token_type and access_token from a token response
// the way RFC 6749 §5.1 defines it, for the oracle.
func fuzzTokenFields(contentType string, body []byte) (tokenType, accessToken string) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		v, _ := url.ParseQuery(string(body))
		return v.Get("token_type"), v.Get("access_token")
	}
	var doc struct {
		TokenType   string `json:"token_type"`
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &doc)
	return doc.TokenType, doc.AccessToken
}

// checkErrorText fails when an error's text could garble a log (control
// characters but tab, invalid UTF-8, bidi controls), is long out of
// proportion to the input, or holds a secret that the
// hostile input did not itself contain.
func checkErrorText(t *testing.T, msg, input string, secrets ...string) {
	t.Helper()
	if !utf8.ValidString(msg) {
		t.Fatalf("error text is not UTF-8: %q", msg)
	}
	for _, r := range msg {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			t.Fatalf("error text has the control character %U: %q", r, msg)
		}
	}
	if len(msg) > 4<<10+2*len(input) {
		t.Fatalf("error text of %d bytes", len(msg))
	}
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
			if !strings.Contains(input, form) && strings.Contains(msg, form) {
				t.Fatalf("error holds a secret: %s", msg)
			}
		}
	}
}

// oneResponse is a token endpoint that always gives the same answer and
// counts what is read of it.
type oneResponse struct {
	status int
	header http.Header
	body   []byte

	mu     sync.Mutex
	bodies []*countingBody
}

func (o *oneResponse) RoundTrip(req *http.Request) (*http.Response, error) {
	closeRequestBody(req)
	o.mu.Lock()
	defer o.mu.Unlock()
	b := &countingBody{r: strings.NewReader(string(o.body))}
	o.bodies = append(o.bodies, b)
	return &http.Response{StatusCode: o.status, Header: o.header.Clone(), Body: b, Request: req}, nil
}

func (o *oneResponse) read() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var most int64
	for _, b := range o.bodies {
		most = max(most, b.read.Load())
	}
	return most
}

// FuzzRegistryTokenRealm runs the registry token flow through a Transport:
// the registry challenges, and its realm answers with the fuzzer's status,
// Content-Type and body. setup picks the credentials: Basic to the realm,
// anonymous, the OAuth2 password form, or a refresh token.
func FuzzRegistryTokenRealm(f *testing.F) {
	f.Fuzz(func(t *testing.T, setup byte, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			status = 200 + (status%800+800)%800
		}
		opts := RegistryOptions{}
		user, password := "alice", fuzzPassword
		switch setup % 4 {
		case 1:
			user, password = "", ""
		case 2:
			opts.PasswordGrant = true
		case 3:
			opts.RefreshToken = fuzzRefreshToken
		}
		n := &registryNet{realm: oneResponse{status: status, header: http.Header{"Content-Type": {contentType}}, body: body}}
		tr := &Transport{Base: n, Credentials: RegistryWithOptions(user, password, opts), Origins: []string{"https://registry.example.com"}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://registry.example.com/v2/team/app/manifests/latest", nil)
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}

		if r := n.realm.read(); r > MaxTokenResponse+1 {
			t.Fatalf("read %d bytes of the realm's response", r)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.realmRequests > 4 {
			t.Fatalf("%d requests to the realm for one request", n.realmRequests)
		}
		for _, v := range n.sent {
			tok, ok := strings.CutPrefix(v, "Bearer ")
			if ok && !isToken68(tok) {
				t.Fatalf("sent the realm's token %q, which is not a b64token", tok)
			}
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("waited for the deadline: %v", err)
			}
			checkErrorText(t, err.Error(), string(body), fuzzPassword, fuzzRefreshToken, "alice:"+fuzzPassword)
		}
	})
}

// registryNet is a registry that challenges for a token from its realm
// and takes any Bearer token, and a realm with one answer.
type registryNet struct {
	realm oneResponse

	mu            sync.Mutex
	realmRequests int
	sent          []string // Authorization values the registry received
}

func (n *registryNet) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/token" {
		n.mu.Lock()
		n.realmRequests++
		n.mu.Unlock()
		return n.realm.RoundTrip(req)
	}
	closeRequestBody(req)
	n.mu.Lock()
	n.sent = append(n.sent, req.Header.Get("Authorization"))
	n.mu.Unlock()
	if strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
	h := http.Header{"Www-Authenticate": {`Bearer realm="https://registry.example.com/token",service="registry.example.com",scope="repository:team/app:pull"`}}
	return &http.Response{StatusCode: 401, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// FuzzParseTokenResponse holds parseTokenResponse to its contract: a
// usable token is a b64token with a bounded lifetime; anything else is an
// error whose text says the response holds no usable token, names the
// problem and not the token.
func FuzzParseTokenResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, nowUnix int64) {
		now := time.Unix(nowUnix%(1<<40), 0)
		tok, err := parseTokenResponse(body, now)
		var doc struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(body, &doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), badTokenPrefix) {
				t.Fatalf("error %v does not say the response holds no usable token", err)
			}
			checkErrorText(t, err.Error(), "")
			for _, s := range []string{doc.Token, doc.AccessToken} {
				if len(s) >= 8 && strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes the token: %v", err)
				}
			}
			return
		}
		switch {
		case !isToken68(tok.token):
			t.Fatalf("accepted the token %q, not a b64token", tok.token)
		case tok.expiry.After(now.Add(maxTokenLifetime)):
			t.Fatalf("a token living until %v, past the longest lifetime from %v", tok.expiry, now)
		case !tok.expiry.After(now.Add(tokenExpiryLeeway)):
			t.Fatalf("a token stale on arrival (expiry %v at %v): every request would fetch one", tok.expiry, now)
		case tok.token != doc.AccessToken && (doc.AccessToken != "" || tok.token != doc.Token):
			t.Fatalf("accepted %q, not the response's access_token %q or token %q", tok.token, doc.AccessToken, doc.Token)
		}
	})
}
