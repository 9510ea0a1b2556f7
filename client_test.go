package reauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testUser     = "alice"
	testPassword = "pw-SENTINEL-7f3a" // grep-able: must never appear in errors or logs
	testToken    = "tok-SENTINEL-91c2"
)

var basicValue = "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))

// seen is one request as a test server saw it.
type seen struct {
	Method, Path, Authorization, ProxyAuthorization string
	Body                                            string
}

// recorder is an httptest server that records every request and answers with
// the handler under test.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	return startRecorder(t, httptest.NewServer, h)
}

// newTLSRecorder is newRecorder over https, e.g. an origin behind a CONNECT
// proxy.
func newTLSRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	return startRecorder(t, httptest.NewTLSServer, h)
}

func startRecorder(t *testing.T, start func(http.Handler) *httptest.Server, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = start(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{req.Method, req.URL.Path, req.Header.Get("Authorization"), req.Header.Get("Proxy-Authorization"), string(body)})
		r.mu.Unlock()
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func (r *recorder) count() int { return len(r.requests()) }

// basicServer challenges for Basic and accepts testUser:testPassword.
func basicServer(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != basicValue {
		w.Header().Set("WWW-Authenticate", `Basic realm="test", charset="UTF-8"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	io.WriteString(w, "ok")
}

func clientFor(t *Transport) *http.Client { return &http.Client{Transport: t} }

func get(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestBasicIsSentAfterTheFirstChallengeThenUpFront(t *testing.T) {
	srv := newRecorder(t, basicServer)
	c := clientFor(&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}})

	resp, err := get(t, c, srv.URL+"/a")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	reqs := srv.requests()
	require.Len(t, reqs, 2, "first call: challenge, then the answer")
	assert.Empty(t, reqs[0].Authorization, "password schemes wait for a challenge")
	assert.Equal(t, basicValue, reqs[1].Authorization)

	for i := 0; i < 10; i++ {
		resp, err := get(t, c, srv.URL+"/b")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, 12, srv.count(), "steady state: one request per call")
}

func TestPreemptiveSendsBasicFromTheFirstRequest(t *testing.T) {
	srv := newRecorder(t, basicServer)
	c := clientFor(&Transport{Credentials: Preemptive(Basic(testUser, testPassword)), Origins: []string{srv.URL}})
	_, err := get(t, c, srv.URL)
	require.NoError(t, err)
	require.Equal(t, 1, srv.count())
	assert.Equal(t, basicValue, srv.requests()[0].Authorization)
}

func TestBearerIsSentWithTheFirstRequest(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c := clientFor(&Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}})
	for i := 0; i < 5; i++ {
		_, err := get(t, c, srv.URL)
		require.NoError(t, err)
	}
	reqs := srv.requests()
	require.Len(t, reqs, 5)
	for _, r := range reqs {
		assert.Equal(t, "Bearer "+testToken, r.Authorization)
	}
}

func TestStatusTable(t *testing.T) {
	bearerRefusal := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="expired"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "token expired")
	}
	tests := []struct {
		name      string
		creds     Credentials
		handler   http.HandlerFunc
		requests  int
		status    int   // when a response comes back
		is        error // when an error comes back
		unwrapped error // the reason inside it
	}{
		{
			name: "401 with challenge, answered: retried once", creds: Basic(testUser, testPassword),
			handler: basicServer, requests: 2, status: http.StatusOK,
		},
		{
			name: "401 with challenge, nothing new: no retry", creds: Bearer(testToken),
			handler: bearerRefusal, requests: 1, is: ErrUnauthorized, unwrapped: ErrNoCredentials,
		},
		{
			name: "401 with a challenge the credentials cannot answer", creds: Basic(testUser, testPassword),
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Negotiate`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			requests: 1, is: ErrUnauthorized, unwrapped: ErrNoCredentials,
		},
		{
			name: "401 without WWW-Authenticate, static token: final", creds: Bearer(testToken),
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) },
			requests: 1, is: ErrUnauthorized, unwrapped: ErrNoCredentials,
		},
		{
			name: "401 without WWW-Authenticate, Basic: nothing asks for Basic, final", creds: Basic(testUser, testPassword),
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) },
			requests: 1, is: ErrUnauthorized, unwrapped: ErrNoCredentials,
		},
		{
			name: "401 again after the retry (Apache re-challenge): final", creds: Basic(testUser, testPassword),
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			requests: 2, is: ErrUnauthorized, unwrapped: ErrRefusedAfterRetry,
		},
		{
			name: "403: final at once", creds: Bearer(testToken),
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) },
			requests: 1, is: ErrForbidden,
		},
		{
			name: "400 invalid_request: final", creds: Bearer(testToken),
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_request"`)
				w.WriteHeader(http.StatusBadRequest)
			},
			requests: 1, is: ErrInvalidRequest,
		},
		{
			name: "400 without a Bearer error: passed through", creds: Bearer(testToken),
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) },
			requests: 1, status: http.StatusBadRequest,
		},
		{
			name: "404: passed through, never an auth failure", creds: Bearer(testToken),
			handler:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) },
			requests: 1, status: http.StatusNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t, tt.handler)
			resp, err := get(t, clientFor(&Transport{Credentials: tt.creds, Origins: []string{srv.URL}}), srv.URL)
			assert.Equal(t, tt.requests, srv.count(), "requests sent")
			if tt.is != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tt.is)
				if tt.unwrapped != nil {
					assert.ErrorIs(t, err, tt.unwrapped)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode)
		})
	}
}

func TestUnauthorizedErrorCarriesChallengesBearerFieldsAndBody(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="the token expired", error_uri="https://example.com/e", scope="read"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, strings.Repeat("x", MaxErrorBody+100))
	})
	_, err := get(t, clientFor(&Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}}), srv.URL+"/p?access_token=secret")
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, http.StatusUnauthorized, ue.StatusCode)
	require.Len(t, ue.Challenges, 1)
	assert.Equal(t, "api", ue.Challenges[0].Params["realm"])
	assert.Equal(t, BearerError{Code: "invalid_token", Description: "the token expired", URI: "https://example.com/e", Scope: "read"}, ue.Bearer)
	assert.Len(t, ue.Body, MaxErrorBody, "the body is kept up to MaxErrorBody")
	assert.Equal(t, srv.URL+"/p", ue.URL, "no query: it may carry secrets")
	assert.Equal(t, 1, ue.Attempts)
}

func TestAtMostOneRetryPerChallengeKind(t *testing.T) {
	// Credentials that always have something new: only the Transport's own
	// rule can stop the loop.
	var answers atomic.Int32
	fresh := credsFunc{
		answer: func(*AuthRequest, *Refusal) (string, error) {
			return "Custom n" + strings.Repeat("x", int(answers.Add(1))), nil
		},
	}
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Custom realm="loop"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	_, err := get(t, clientFor(&Transport{Credentials: fresh, Origins: []string{srv.URL}}), srv.URL)
	require.ErrorIs(t, err, ErrRefusedAfterRetry)
	assert.Equal(t, 2, srv.count(), "one request and one retry, whatever the server does")
}

func TestRefusedCredentialsAreNeverSentAgain(t *testing.T) {
	t.Run("preemptive Basic refused: no second try with the same value", func(t *testing.T) {
		srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		})
		c := clientFor(&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}})
		_, err := get(t, c, srv.URL) // learns the protection space
		require.ErrorIs(t, err, ErrRefusedAfterRetry)
		_, err = get(t, c, srv.URL)
		require.ErrorIs(t, err, ErrSameCredentials)
		reqs := srv.requests()
		require.Len(t, reqs, 3, "the second call stops after its first request")
		assert.Equal(t, basicValue, reqs[2].Authorization)
	})
	t.Run("credentials offering the refused value again", func(t *testing.T) {
		same := credsFunc{
			authorization: func(*AuthRequest) (string, error) { return "Custom same", nil },
			answer:        func(*AuthRequest, *Refusal) (string, error) { return "Custom same", nil },
		}
		srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Custom`)
			w.WriteHeader(http.StatusUnauthorized)
		})
		_, err := get(t, clientFor(&Transport{Credentials: same, Origins: []string{srv.URL}}), srv.URL)
		require.ErrorIs(t, err, ErrSameCredentials)
		assert.Equal(t, 1, srv.count())
	})
	t.Run("a value refused earlier in the request is not offered after a different one", func(t *testing.T) {
		// A (refused) → B (refused): the Transport stops at its one retry
		// before it could go back to A.
		vals := []string{"Custom A", "Custom B", "Custom A"}
		var n atomic.Int32
		alternating := credsFunc{
			authorization: func(*AuthRequest) (string, error) { return vals[0], nil },
			answer:        func(*AuthRequest, *Refusal) (string, error) { return vals[n.Add(1)], nil },
		}
		srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Custom`)
			w.WriteHeader(http.StatusUnauthorized)
		})
		_, err := get(t, clientFor(&Transport{Credentials: alternating, Origins: []string{srv.URL}}), srv.URL)
		require.Error(t, err)
		reqs := srv.requests()
		require.Len(t, reqs, 2)
		assert.NotEqual(t, reqs[0].Authorization, reqs[1].Authorization)
	})
}

func TestForbiddenIsFinal(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="insufficient_scope", scope="admin write"`)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "you need admin")
	})
	tr := &Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}}

	_, err := get(t, clientFor(tr), srv.URL)
	require.Error(t, err)
	var ue *url.Error
	require.ErrorAs(t, err, &ue, "http.Client wraps RoundTrip errors")
	assert.ErrorIs(t, err, ErrForbidden)
	var fe *ForbiddenError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, http.StatusForbidden, fe.StatusCode)
	assert.Equal(t, "admin write", fe.Bearer.Scope, "the missing scope is surfaced")
	assert.Equal(t, "you need admin", string(fe.Body))
	assert.Equal(t, 1, srv.count())

	t.Run("through the retrying client: exactly one request", func(t *testing.T) {
		before := srv.count()
		rc := NewClient(tr)
		rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
		_, err := rc.Get(srv.URL)
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrForbidden)
		var fe *ForbiddenError
		assert.ErrorAs(t, err, &fe)
		assert.Equal(t, before+1, srv.count())
	})
}

func TestRegistryDeniedBodyIsKept(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
	})
	_, err := get(t, clientFor(&Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}}), srv.URL)
	var fe *ForbiddenError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, []RegistryError{{Code: "DENIED", Message: "requested access to the resource is denied"}}, fe.RegistryErrors())
	assert.Contains(t, fe.Error(), "DENIED")
}

func TestReturnResponseGivesTheFinalResponseUntouched(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(status)
			io.WriteString(w, "the server's words")
		})
		resp, err := get(t, clientFor(&Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}, ReturnResponse: true}), srv.URL)
		require.NoError(t, err)
		assert.Equal(t, status, resp.StatusCode)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "the server's words", string(body))
		assert.Equal(t, 1, srv.count())
	}
}

func TestCredentialsGoOnlyToBoundOrigins(t *testing.T) {
	other := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="phish"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	bound := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, other.URL+"/landing", http.StatusTemporaryRedirect)
			return
		}
		basicServer(w, r)
	})
	tr := &Transport{Credentials: Basic(testUser, testPassword), Origins: []string{bound.URL}}
	c := clientFor(tr)

	t.Run("another origin's challenge is not answered", func(t *testing.T) {
		resp, err := get(t, c, other.URL+"/x")
		require.NoError(t, err, "unbound origins pass through untouched")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("a redirect to another origin carries no credentials", func(t *testing.T) {
		_, err := get(t, c, bound.URL+"/") // learn the protection space: now sent up front
		require.NoError(t, err)
		resp, err := get(t, c, bound.URL+"/redirect")
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	for _, r := range other.requests() {
		assert.Empty(t, r.Authorization, "the unbound origin saw credentials on %s", r.Path)
	}
	t.Run("same host, other port is another origin", func(t *testing.T) {
		u, _ := url.Parse(other.URL)
		assert.False(t, mustOrigins(t, bound.URL).contains(u))
	})
}

func mustOrigins(t *testing.T, raw ...string) *originSet {
	t.Helper()
	s, err := parseOrigins("Transport.Origins", raw)
	require.NoError(t, err)
	return s
}

func TestPlainHTTPOnlyToLoopbackUnlessAllowed(t *testing.T) {
	var sent atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	for _, creds := range []Credentials{Bearer(testToken), Preemptive(Basic(testUser, testPassword))} {
		tr := &Transport{Base: base, Credentials: creds, Origins: []string{"http://api.example.com", "https://api.example.com"}}
		_, err := get(t, clientFor(tr), "http://api.example.com/x")
		require.ErrorIs(t, err, ErrInsecureCredentials)
		assert.NotContains(t, err.Error(), testToken)

		_, err = get(t, clientFor(tr), "https://api.example.com/x")
		require.NoError(t, err)

		tr = &Transport{Base: base, Credentials: creds, Origins: []string{"http://api.example.com"}, InsecureAllowHTTP: true}
		_, err = get(t, clientFor(tr), "http://api.example.com/x")
		require.NoError(t, err)
	}
	assert.Equal(t, int32(4), sent.Load(), "nothing was sent on the refused requests")
	for _, host := range []string{"127.0.0.1", "127.8.9.10", "[::1]", "localhost"} {
		tr := &Transport{Base: base, Credentials: Bearer(testToken), Origins: []string{"http://" + host + ":8080"}}
		_, err := get(t, clientFor(tr), "http://"+host+":8080/x")
		assert.NoError(t, err, host)
	}
}

func TestConfigurationErrorsSayHowToFixThem(t *testing.T) {
	tr := &Transport{Credentials: Bearer(testToken)}
	_, err := tr.RoundTrip(httptest.NewRequest("GET", "https://api.example.com/", nil))
	require.ErrorIs(t, err, ErrNoOrigins)
	assert.Contains(t, err.Error(), "Origins: []string{")

	for _, bad := range []string{"api.example.com", "https://api.example.com/v1", "ftp://x", "https://user:pw@x", "user:pw@x", "https://x/?access_token=pw@"} {
		tr := &Transport{Credentials: Bearer(testToken), Origins: []string{bad}}
		_, err := tr.RoundTrip(httptest.NewRequest("GET", "https://api.example.com/", nil))
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "pw@", "no userinfo echoed")
	}
	_, err = (&Transport{Credentials: Basic("a:b", "c"), Origins: []string{"https://x"}, Base: roundTripFunc(nil)}).
		RoundTrip(httptest.NewRequest("GET", "https://x/", nil))
	assert.ErrorContains(t, err, "':'")
	assert.ErrorIs(t, err, ErrMalformedCredentials)
	_, err = (&Transport{Credentials: Bearer("has space " + testToken), Origins: []string{"https://x"}, Base: roundTripFunc(nil)}).
		RoundTrip(httptest.NewRequest("GET", "https://x/", nil))
	assert.ErrorIs(t, err, ErrMalformedCredentials)
	assertNoSecret(t, "the text", err.Error())
	retry, _ := CheckRetry(context.Background(), nil, err)
	assert.False(t, retry, "a malformed credential will not get better by retrying")
}

func TestTheCallersRequestIsNotModified(t *testing.T) {
	srv := newRecorder(t, basicServer)
	tr := &Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}
	req, err := http.NewRequest("POST", srv.URL, strings.NewReader("payload"))
	require.NoError(t, err)
	req.Header.Set("X-Caller", "1")
	before := req.Header.Clone()
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, before, req.Header)
	assert.Empty(t, req.Header.Get("Authorization"))
}

func TestRetriedRequestCarriesTheSameBody(t *testing.T) {
	payload := strings.Repeat("body-", 1000)
	tests := []struct {
		name string
		body func() (io.Reader, bool) // the reader, and whether http.NewRequest can set GetBody
	}{
		{"GetBody", func() (io.Reader, bool) { return strings.NewReader(payload), true }},
		{"no GetBody: buffered", func() (io.Reader, bool) { return io.NopCloser(strings.NewReader(payload)), false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder(t, basicServer)
			tr := &Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}
			r, hasGetBody := tt.body()
			req, err := http.NewRequest("POST", srv.URL, r)
			require.NoError(t, err)
			require.Equal(t, hasGetBody, req.GetBody != nil)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			reqs := srv.requests()
			require.Len(t, reqs, 2)
			assert.Equal(t, payload, reqs[0].Body)
			assert.Equal(t, payload, reqs[1].Body)
		})
	}
	t.Run("no GetBody and over the limit: sent once whole, then a typed error", func(t *testing.T) {
		srv := newRecorder(t, basicServer)
		tr := &Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}, MaxBufferedBody: 100}
		req, err := http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader(payload)))
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.ErrorIs(t, err, ErrUnauthorized)
		require.ErrorIs(t, err, ErrBodyNotReplayable)
		reqs := srv.requests()
		require.Len(t, reqs, 1, "never re-sent empty or cut short")
		assert.Equal(t, payload, reqs[0].Body)
	})
}

func TestRetryablehttpRequestBodyIsReplayedOnChallenge(t *testing.T) {
	srv := newRecorder(t, basicServer)
	c := NewClient(&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}})
	resp, err := c.Post(srv.URL, "text/plain", bytes.NewBufferString("from retryablehttp"))
	require.NoError(t, err)
	resp.Body.Close()
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "from retryablehttp", reqs[1].Body)
}

func TestNewClientRetriesTransientFailuresNotAuthFailures(t *testing.T) {
	var n atomic.Int32
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok")
		}
	})
	c := NewClient(&Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}})
	c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 3, srv.count())

	refusing := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	c = NewClient(&Transport{Credentials: Bearer(testToken), Origins: []string{refusing.URL}})
	c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, time.Millisecond
	_, err = c.Get(refusing.URL)
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, 1, refusing.count())

	for _, status := range []int{401, 403, 407} {
		retry, err := CheckRetry(context.Background(), &http.Response{StatusCode: status}, nil)
		assert.NoError(t, err)
		assert.False(t, retry, "status %d", status)
	}
}

func TestProxyAuthenticationHasItsOwnRetry(t *testing.T) {
	origin := newRecorder(t, basicServer)
	proxy := basicProxy(t) // a forward proxy for plain http that wants its own credentials
	proxyURL, _ := url.Parse(proxy.URL)
	tr := &Transport{
		Base:             &http.Transport{Proxy: http.ProxyURL(proxyURL)},
		Credentials:      Basic(testUser, testPassword),
		Origins:          []string{origin.URL},
		ProxyCredentials: Basic("proxyuser", proxyPassword),
	}
	resp, err := get(t, clientFor(tr), origin.URL+"/via-proxy")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, proxy.forwarded(), 3, "407, then 401, then 200: three requests")
	for _, r := range origin.requests() {
		assert.Empty(t, r.ProxyAuthorization, "proxy credentials never reach the origin")
	}

	t.Run("no proxy in the path: a 407 from an origin is not answered", func(t *testing.T) {
		fake := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Proxy-Authenticate", `Basic realm="harvest"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
		})
		tr := &Transport{Base: &http.Transport{}, ProxyCredentials: Basic("proxyuser", "proxy-pw-SENTINEL")}
		resp, err := get(t, clientFor(tr), fake.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
		require.Equal(t, 1, fake.count())
		assert.Empty(t, fake.requests()[0].ProxyAuthorization)
	})
}

func TestContextCancelledWhileObtainingCredentials(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Custom`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	blocking := credsFunc{answer: func(r *AuthRequest, _ *Refusal) (string, error) {
		<-r.Context().Done()
		return "", r.Context().Err()
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	_, err := (&Transport{Credentials: blocking, Origins: []string{srv.URL}}).RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNoSecretInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	var events []Event
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "denied")
	})
	for _, creds := range []Credentials{Basic(testUser, testPassword), Bearer(testToken)} {
		tr := &Transport{Credentials: creds, Origins: []string{srv.URL}, Logger: logger, OnEvent: func(e Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}}
		c := clientFor(tr)
		for i := 0; i < 2; i++ {
			_, err := get(t, c, srv.URL+"/?token="+testToken)
			// http.Client's *url.Error quotes the URL as the caller gave it;
			// what reauth adds must not carry the query.
			var ue *UnauthorizedError
			require.ErrorAs(t, err, &ue)
			assertNoSecret(t, "the text", ue.Error())
		}
	}
	require.NotEmpty(t, events)
	kinds := map[EventKind]bool{}
	for _, e := range events {
		kinds[e.Kind] = true
		assertNoSecret(t, "the text", e.URL)
	}
	assert.True(t, kinds[EventChallenge] && kinds[EventRetry] && kinds[EventGiveUp], "events: %v", kinds)
	assert.Contains(t, logs.String(), "reauth: give-up")
	assertNoSecret(t, "the text", logs.String())
}

func TestConcurrentUseIsSafe(t *testing.T) {
	srv := newRecorder(t, basicServer)
	c := clientFor(&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}})
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				resp, err := c.Get(srv.URL)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, failures.Load())
	assert.LessOrEqual(t, srv.count(), 320+32, "at most one challenge per goroutine's first call")
}

// credsFunc is Credentials made of functions, for tests.
type credsFunc struct {
	authorization func(*AuthRequest) (string, error)
	answer        func(*AuthRequest, *Refusal) (string, error)
}

// Authorize sets the value answer chose after a refusal, else the one
// authorization returns.
func (c credsFunc) Authorize(r *AuthRequest) error {
	if v, ok := r.State.(string); ok {
		r.Set(r.Field(), v)
		return nil
	}
	if c.authorization == nil {
		return nil
	}
	v, err := c.authorization(r)
	if err == nil && v != "" {
		r.Set(r.Field(), v)
	}
	return err
}

// Refused asks answer for the value of the retry.
func (c credsFunc) Refused(r *AuthRequest, ref *Refusal) (Retry, error) {
	v, err := c.answer(r, ref)
	if err != nil || v == "" {
		return 0, err
	}
	r.State = v
	return RetryChallenge, nil
}

func (credsFunc) Observe(*AuthRequest, *http.Response) error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) {
	if f == nil {
		return nil, errors.New("roundTripFunc: nil")
	}
	return f(r)
}

func TestTransportProxyIsTheProxyRequestsGoThrough(t *testing.T) {
	// An origin that answers 407 itself, to harvest proxy credentials.
	harvester := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="harvest"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	})
	// The proxy that Transport.Proxy names: it must be where requests go.
	proxy := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	})
	proxyURL, _ := url.Parse(proxy.URL)
	tr := &Transport{ // Base nil: http.DefaultTransport, which goes direct to loopback
		Proxy:            http.ProxyURL(proxyURL),
		ProxyCredentials: Basic("proxyuser", "proxy-pw-SENTINEL"),
	}
	_, err := get(t, clientFor(tr), harvester.URL+"/x")
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Zero(t, harvester.count(), "the request went through the named proxy, not direct")
	require.Equal(t, 2, proxy.count())
	assert.NotEmpty(t, proxy.requests()[1].ProxyAuthorization)
}

func TestProxyCredentialsNeverReachAnOrigin(t *testing.T) {
	// A Base that is not an *http.Transport: Transport.Proxy describes it.
	var seen []*http.Request
	var mu sync.Mutex
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		h := http.Header{}
		h.Set("Proxy-Authenticate", `Basic realm="harvest"`)
		return &http.Response{StatusCode: http.StatusProxyAuthRequired, Header: h, Body: http.NoBody, Request: r}, nil
	})
	t.Run("through a SOCKS proxy the headers reach the origin", func(t *testing.T) {
		seen = nil
		socks, _ := url.Parse("socks5://127.0.0.1:1080")
		tr := &Transport{Base: base, Proxy: http.ProxyURL(socks), ProxyCredentials: Basic("proxyuser", "proxy-pw-SENTINEL")}
		resp, err := get(t, clientFor(tr), "http://127.0.0.1:9/x")
		require.NoError(t, err, "the 407 is passed through, not answered")
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
		require.Len(t, seen, 1)
		assert.Empty(t, seen[0].Header.Get("Proxy-Authorization"))
	})
	t.Run("a Host override through a forward proxy is another origin", func(t *testing.T) {
		seen = nil
		proxyURL, _ := url.Parse("http://127.0.0.1:3128")
		tr := &Transport{Base: base, Proxy: http.ProxyURL(proxyURL), Credentials: Bearer(testToken), Origins: []string{"http://127.0.0.1:9"}}
		req, _ := http.NewRequest("GET", "http://127.0.0.1:9/x", nil)
		req.Host = "evil.example" // the proxy forwards to this host
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Len(t, seen, 1)
		assert.Empty(t, seen[0].Header.Get("Authorization"))
	})
}

func TestNilURLAndNilResponseAreErrorsNotPanics(t *testing.T) {
	tr := &Transport{Credentials: Bearer(testToken), Origins: []string{"https://x"}}
	_, err := tr.RoundTrip(&http.Request{Method: "GET", Header: http.Header{}})
	assert.ErrorContains(t, err, "nil Request.URL")

	nilBase := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
	tr = &Transport{Base: nilBase, Credentials: Bearer(testToken), Origins: []string{"https://x"}}
	_, err = tr.RoundTrip(httptest.NewRequest("GET", "https://x/", nil))
	assert.ErrorContains(t, err, "nil response")
}

func TestBufferingABodyHonoursTheContext(t *testing.T) {
	srv := newRecorder(t, basicServer)
	pr, pw := io.Pipe() // a body that never ends and has no GetBody
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, pr)
	_, err := (&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}).RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The body streams as it is produced (nothing is read ahead), so the
	// request may have reached the server; it is never sent again.
	assert.LessOrEqual(t, srv.count(), 1)
}

func TestBothLegsRetryingNeverRepeatADigestNonceCount(t *testing.T) {
	// 407 (proxy Digest), then 401 (origin): the proxy's answer goes out on
	// the second and third request, each time with its own nonce count.
	var proxyValues []string
	var mu sync.Mutex
	n := 0
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		proxyValues = append(proxyValues, r.Header.Get("Proxy-Authorization"))
		h := http.Header{}
		switch n {
		case 1:
			h.Set("Proxy-Authenticate", `Digest realm="proxy", nonce="pn", qop="auth", algorithm=SHA-256`)
			return &http.Response{StatusCode: 407, Header: h, Body: http.NoBody, Request: r}, nil
		case 2:
			h.Set("WWW-Authenticate", `Basic realm="origin"`)
			return &http.Response{StatusCode: 401, Header: h, Body: http.NoBody, Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: r}, nil
	})
	proxyURL, _ := url.Parse("http://127.0.0.1:3128")
	tr := &Transport{
		Base: base, Proxy: http.ProxyURL(proxyURL),
		ProxyCredentials: Digest("proxyuser", "proxy-pw-SENTINEL"),
		Credentials:      Basic(testUser, testPassword), Origins: []string{"http://127.0.0.1:9"},
	}
	resp, err := get(t, clientFor(tr), "http://127.0.0.1:9/x")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	require.Len(t, proxyValues, 3)
	assert.Contains(t, proxyValues[1], "nc=00000001")
	assert.Contains(t, proxyValues[2], "nc=00000002", "the origin's retry carries the proxy's next count")
}

func TestNewClientRedactsURLsInLogsAndErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	unavailable := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	refusing := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	closed := newRecorder(t, okHandler)
	closed.Close() // connection refused: an error from the network
	query := "/items?access_token=" + testToken + "#frag"
	tests := []struct {
		name, url string
		is        error
	}{
		{"5xx until it gives up", unavailable.URL + query, nil},
		{"an auth failure", refusing.URL + query, ErrUnauthorized},
		{"a network error", closed.URL + query, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Transport{Credentials: Bearer("other-token"), Origins: []string{unavailable.URL, refusing.URL, closed.URL}, Logger: logger}
			c := NewClient(tr)
			c.RetryMax, c.RetryWaitMin, c.RetryWaitMax = 1, time.Millisecond, time.Millisecond
			_, err := c.Get(tt.url)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "giving up")
			assert.Contains(t, err.Error(), "/items", "the path stays")
			assertNoSecret(t, "the error", err.Error())
			assert.False(t, strings.Contains(err.Error(), "#frag"), "the fragment is in the error")
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is, "the typed error is still there")
			}
		})
	}
	assert.Contains(t, logs.String(), "/items")
	assertNoSecret(t, "the log", logs.String())
	assert.False(t, strings.Contains(logs.String(), "access_token"), "the query is in the log")
}

func TestRedactURLsIn(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no url here", "no url here"},
		{`Get "http://h:1/p?access_token=x": EOF`, `Get "http://h:1/p": EOF`},
		{"GET HTTPS://u:pw@h/p#f and https://h/q?a=b", "GET https://h/p and https://h/q"},
		{"https://h/%zz?a=b tail", "https://[redacted] tail"},
		{"http://h/p", "http://h/p"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, redactURLsIn(tt.in), tt.in)
	}
}
