package reauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Test values, grep-able: none may appear in an error, log line or event.
// Every token the fake endpoint issues contains "SENTINEL" too.
const (
	testClientID     = "reauth-test-client"
	testClientSecret = "cs-SENTINEL-5b1e"
	secretMarker     = "SENTINEL"
)

// tokenEndpoint is a small OAuth 2.0 authorization server (RFC 6749) and the
// resource server that trusts it: client_credentials and refresh_token
// grants, client authentication by Basic or by form parameters (§2.3.1),
// optional refresh token rotation, revocation, and counters.
type tokenEndpoint struct {
	*httptest.Server

	// Settings, fixed before the first request.
	rotate    bool   // issue a new refresh token on each refresh, retiring the old one
	expiresIn int    // expires_in of issued tokens, seconds; 0: none
	tokenType string // token_type of issued tokens; "": Bearer

	// failWith, when set, answers every token request with this status and an
	// error body that echoes the client secret (as careless servers do).
	failWith atomic.Int32
	// hold, when set, holds token requests until it returns (or the client
	// gives up), for timeouts and for gating concurrent refusals.
	hold func(r *http.Request)
	// afterGrant, when set, is called once a grant has been made (a refresh
	// token rotated, an access token issued) and before the answer is
	// written: the client may give up in between, as on a slow network.
	afterGrant func(r *http.Request)
	// accessToken, when set, is issued instead of a fresh value.
	accessToken string

	fetches atomic.Int64 // token requests served (not counting failures)
	calls   atomic.Int64 // token requests received

	mu      sync.Mutex
	n       int
	valid   map[string]bool // access tokens the resource server accepts
	refresh map[string]bool // refresh tokens the endpoint accepts
}

func newTokenEndpoint(t testing.TB, configure func(*tokenEndpoint)) *tokenEndpoint {
	t.Helper()
	e := &tokenEndpoint{valid: map[string]bool{}, refresh: map[string]bool{}}
	if configure != nil {
		configure(e)
	}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serveToken))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) tokenURL() string { return e.URL + "/token" }

// The configs send the client's credentials in a Basic header: x/oauth2's
// auto-detection would try both ways on every failure and blur the counts.

func (e *tokenEndpoint) clientCredentials() *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: testClientID, ClientSecret: testClientSecret, TokenURL: e.tokenURL(), Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInHeader}
}

func (e *tokenEndpoint) config() *oauth2.Config {
	return &oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: oauth2.Endpoint{TokenURL: e.tokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
}

// grantRefreshToken issues a refresh token as an authorization code grant
// would have, for RefreshToken credentials to start from.
func (e *tokenEndpoint) grantRefreshToken() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	rt := fmt.Sprintf("rt-%s-%d", secretMarker, e.n)
	e.refresh[rt] = true
	return rt
}

func (e *tokenEndpoint) accepts(accessToken string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.valid[accessToken]
}

func (e *tokenEndpoint) acceptsRefresh(rt string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refresh[rt]
}

// revokeAll makes the resource server refuse every access token issued so far.
func (e *tokenEndpoint) revokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.valid)
}

func (e *tokenEndpoint) serveToken(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/token" || r.ParseForm() != nil {
		tokenFailure(w, http.StatusBadRequest, "invalid_request", "POST a form to /token")
		return
	}
	if e.hold != nil {
		// After the body is read: only then does net/http notice a client
		// that hangs up, and cancel r's context.
		e.hold(r)
		if r.Context().Err() != nil {
			return
		}
	}
	if s := e.failWith.Load(); s != 0 {
		// A careless server: the secret in error_description and the body.
		tokenFailure(w, int(s), "server_error", "backend down for client_secret="+testClientSecret)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != testClientID || secret != testClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		tokenFailure(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	resp, status, code, desc := e.grant(r)
	if status != 0 {
		tokenFailure(w, status, code, desc)
		return
	}
	if e.afterGrant != nil {
		e.afterGrant(r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}

// grant makes the grant r asks for and returns the answer, or the status,
// error code and description of a refusal (RFC 6749 §5.2).
func (e *tokenEndpoint) grant(r *http.Request) (resp map[string]any, status int, code, desc string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	resp = map[string]any{}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !e.refresh[rt] {
			// RFC 6749 §5.2; echoing the refused token is the kind of help
			// that must not reach a log.
			return nil, http.StatusBadRequest, "invalid_grant", "refresh token " + rt + " is not valid"
		}
		if e.rotate {
			delete(e.refresh, rt)
			e.n++
			next := fmt.Sprintf("rt-%s-%d", secretMarker, e.n)
			e.refresh[next] = true
			resp["refresh_token"] = next
		}
	default:
		return nil, http.StatusBadRequest, "unsupported_grant_type", ""
	}
	e.n++
	at := e.accessToken
	if at == "" {
		at = fmt.Sprintf("at-%s-%d", secretMarker, e.n)
	}
	e.valid[at] = true
	e.fetches.Add(1)
	resp["access_token"] = at
	resp["token_type"] = "Bearer"
	if e.tokenType != "" {
		resp["token_type"] = e.tokenType
	}
	if e.expiresIn > 0 {
		resp["expires_in"] = e.expiresIn
	}
	return resp, 0, "", ""
}

func tokenFailure(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// resource is the resource server: 200 for an access token the endpoint
// issued and has not revoked, else 401 with an invalid_token challenge
// (RFC 6750 §3).
func (e *tokenEndpoint) resource(w http.ResponseWriter, r *http.Request) {
	if at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && e.accepts(at) {
		io.WriteString(w, "ok")
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="the access token is not valid"`)
	w.WriteHeader(http.StatusUnauthorized)
}

// inProcessBase is a Base that serves requests with a handler in this process:
// for the tests that send a thousand concurrent requests, so that they
// measure the credentials and not the loopback interface.
func inProcessBase(h http.HandlerFunc) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		if r.Body != nil {
			defer r.Body.Close()
		}
		h(rec, r)
		resp := rec.Result()
		resp.Request = r
		return resp, nil
	})
}
