package reauth_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// Fault tests: what reauth does when the network and the servers fail. Each
// case must end with a clear error, and none may hang: calls run with a
// context deadline, and returns checks that they came back on their own
// instead of at the deadline.

// hangLimit bounds every call of these tests. A call still running after
// it has hung; it is never reached when the behaviour is right.
const hangLimit = 20 * time.Second

// returns runs call in a goroutine and fails the test if it has not
// returned within hangLimit.
func returns(t *testing.T, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hangLimit):
		t.Fatalf("the call hung")
		return nil
	}
}

// countingTransport is a Base that counts the response body bytes its
// user reads: what reauth and x/oauth2 actually took off the wire.
type countingTransport struct {
	base http.RoundTripper
	read atomic.Int64
}

func newCountingTransport(t *testing.T) *countingTransport {
	ht := &http.Transport{}
	t.Cleanup(ht.CloseIdleConnections)
	return &countingTransport{base: ht}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if resp != nil {
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// hugeBody answers with status and a body that starts with prefix and goes
// on for 2 GiB, stopping when the client hangs up. written counts what it
// wrote.
func hugeBody(status int, contentType, prefix string, written *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, prefix)
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for total := int64(0); total < 2<<30; total += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up
			}
			written.Add(int64(len(chunk)))
		}
	}
}

// blockUntilGone holds the request until the client goes away, after
// telling arrived. It reads the body first: net/http notices that a client
// went away only once the body is consumed. The bound keeps a broken test
// from blocking its server's Close forever.
func blockUntilGone(arrived chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-time.After(hangLimit):
		}
	}
}

// closedURL returns the URL of a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// api is a resource server that takes any Bearer token.
func bearerAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTokenEndpointFaultsGiveClearErrors(t *testing.T) {
	var written atomic.Int64
	tests := []struct {
		name     string
		endpoint http.HandlerFunc // nil: nothing listens
		deadline time.Duration
		is       error    // errors.Is target besides ErrTokenEndpoint
		says     []string // in the error text
		maxRead  int64    // most bytes of the answer the client may read
	}{
		{name: "slow: the request's deadline ends the wait", endpoint: blockUntilGone(nil), deadline: 300 * time.Millisecond,
			is: context.DeadlineExceeded, says: []string{"obtaining a token", "deadline exceeded"}},
		{name: "down: nothing listens", says: []string{"obtaining a token", "connection refused"}},
		{name: "outage: 503", endpoint: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		}, says: []string{"token endpoint answered 503"}},
		{name: "garbage: HTML instead of JSON", endpoint: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Gateway says hi</body></html>")
		}, says: []string{"obtaining a token", "cannot parse"}},
		{name: "garbage: a token a header cannot carry", endpoint: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"abc\r\nX-Injected: 1","token_type":"Bearer"}`)
		}, says: []string{"control character"}},
		{name: "2 GiB of JSON: read up to x/oauth2's 1 MiB, then a parse error",
			endpoint: hugeBody(200, "application/json", `{"access_token":"`, &written),
			says:     []string{"obtaining a token", "cannot parse json"}, maxRead: 1 << 20},
		{name: "2 GiB form token: refused by reauth's own limit",
			endpoint: hugeBody(200, "application/x-www-form-urlencoded", "token_type=bearer&access_token=", &written),
			says:     []string{"access token of", "over reauth's limit"}, maxRead: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL := closedURL(t)
			if tt.endpoint != nil {
				srv := httptest.NewServer(tt.endpoint)
				t.Cleanup(srv.Close)
				tokenURL = srv.URL
			}
			written.Store(0)
			counting := newCountingTransport(t)
			api := bearerAPI(t)
			creds := reauth.ClientCredentials(&clientcredentials.Config{
				ClientID: "client", ClientSecret: "secret", TokenURL: tokenURL + "/token", AuthStyle: oauth2.AuthStyleInHeader,
			}, reauth.OAuth2Options{HTTPClient: &http.Client{Transport: counting}, FetchTimeout: 2 * time.Second}) // a fetch outlives its request
			client := &http.Client{Transport: &reauth.Transport{Credentials: creds, Origins: []string{api.URL}}}

			deadline := tt.deadline
			if deadline == 0 {
				deadline = hangLimit
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			err := returns(t, func() error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL, nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			})

			require.Error(t, err)
			var te *reauth.TokenError
			require.ErrorAs(t, err, &te)
			assert.ErrorIs(t, err, reauth.ErrTokenEndpoint)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			} else {
				assert.NotErrorIs(t, err, context.DeadlineExceeded, "the call ended at its deadline, not on the fault")
			}
			for _, s := range tt.says {
				assert.Contains(t, err.Error(), s)
			}
			if tt.maxRead > 0 {
				assert.LessOrEqual(t, counting.read.Load(), tt.maxRead+1, "bytes of the token response read")
				assert.Less(t, written.Load(), int64(256<<20), "the endpoint wrote on after the client stopped reading")
			}
		})
	}
}

func TestRegistryRealmFaultsGiveClearErrors(t *testing.T) {
	var written atomic.Int64
	tests := []struct {
		name     string
		realm    http.HandlerFunc // nil: nothing listens
		deadline time.Duration
		is       error
		says     []string
		maxRead  int64
	}{
		{name: "slow", realm: blockUntilGone(nil), deadline: 300 * time.Millisecond, is: context.DeadlineExceeded},
		{name: "down", is: nil, says: []string{"registry token realm", "connection refused"}},
		{name: "outage: 503", realm: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}, is: reauth.ErrTokenEndpoint, says: []string{"token endpoint answered 503"}},
		{name: "garbage", realm: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>")
		}, is: reauth.ErrTokenEndpoint, says: []string{"token endpoint answered 200", "no usable token", "not JSON"}},
		{name: "2 GiB answer: read up to MaxTokenResponse", realm: hugeBody(200, "application/json", `{"token":"`, &written),
			is: reauth.ErrTokenEndpoint, says: []string{"no usable token", "larger than 1048576 bytes"}, maxRead: reauth.MaxTokenResponse},
		{name: "2 GiB refusal: read up to MaxErrorBody", realm: hugeBody(401, "application/json", `{"details":"`, &written),
			is: reauth.ErrTokenEndpoint, says: []string{"token endpoint answered 401"}, maxRead: reauth.MaxErrorBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			realmURL := closedURL(t)
			if tt.realm != nil {
				srv := httptest.NewServer(tt.realm)
				t.Cleanup(srv.Close)
				realmURL = srv.URL
			}
			written.Store(0)
			registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realmURL+`/token",service="reg",scope="repository:team/app:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			t.Cleanup(registry.Close)
			counting := newCountingTransport(t)
			client := &http.Client{Transport: &reauth.Transport{
				Base: counting, Credentials: reauth.Registry("alice", "wonderland"), Origins: []string{registry.URL, realmURL},
			}}
			deadline := tt.deadline
			if deadline == 0 {
				deadline = hangLimit
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			err := returns(t, func() error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, registry.URL+"/v2/team/app/manifests/latest", nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			})

			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			if tt.is != context.DeadlineExceeded {
				assert.NotErrorIs(t, err, context.DeadlineExceeded, "the call ended at its deadline, not on the fault")
			}
			for _, s := range tt.says {
				assert.Contains(t, err.Error(), s)
			}
			if tt.maxRead > 0 {
				// The registry's 401 is read too, and it is short.
				assert.LessOrEqual(t, counting.read.Load(), tt.maxRead+1+64<<10, "bytes read")
				assert.Less(t, written.Load(), int64(256<<20), "the realm wrote on after the client stopped reading")
			}
		})
	}
}

func TestHugeRefusalBodiesAreReadOnlyUpToTheirBound(t *testing.T) {
	var written atomic.Int64
	api := httptest.NewServer(hugeBody(http.StatusUnauthorized, "text/plain", "denied ", &written))
	t.Cleanup(api.Close)
	counting := newCountingTransport(t)
	client := &http.Client{Transport: &reauth.Transport{Base: counting, Credentials: reauth.Bearer("token"), Origins: []string{api.URL}}}
	err := returns(t, func() error {
		_, err := client.Get(api.URL)
		return err
	})
	var ue *reauth.UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Len(t, ue.Body, reauth.MaxErrorBody, "the error keeps the start of the body")
	assert.LessOrEqual(t, counting.read.Load(), int64(64<<10+reauth.MaxErrorBody), "bytes of the refusal read")
	assert.Less(t, written.Load(), int64(256<<20))
}

// hijacked answers by writing raw bytes on the connection and closing it:
// a server that dies mid-response.
func hijacked(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		buf.WriteString(raw)
		buf.Flush()
		conn.Close()
	}
}

func TestAPIServerClosingConnectionsMidResponse(t *testing.T) {
	challenge := "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"api\"\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name string
		// first answers the first attempt; retry, if set, the attempt with
		// credentials.
		first, retry http.HandlerFunc
		says         string
	}{
		{name: "closed before the status line", first: hijacked(""), says: "EOF"},
		{name: "closed in the middle of the header", first: hijacked("HTTP/1.1 401 Unauthorized\r\nWWW-Authen"), says: "connection broken"},
		{name: "garbage instead of a response", first: hijacked("SSH-2.0-OpenSSH_9.6\r\n"), says: "malformed HTTP"},
		{name: "the retry's connection closed before the status line", first: hijacked(challenge), retry: hijacked(""), says: "EOF"},
		{name: "the retry's connection closed in the middle of the header", first: hijacked(challenge),
			retry: hijacked("HTTP/1.1 200 OK\r\nContent-Le"), says: "connection broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "" && tt.retry != nil {
					tt.retry(w, r)
					return
				}
				tt.first(w, r)
			}))
			t.Cleanup(api.Close)
			tr := &reauth.Transport{Base: &http.Transport{}, Credentials: reauth.Basic("alice", "wonderland"), Origins: []string{api.URL}}
			t.Cleanup(tr.CloseIdleConnections)

			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			defer cancel()
			err := returns(t, func() error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL, nil)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.says)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, reauth.ErrUnauthorized, "a broken connection is not a refusal")
		})
	}

	t.Run("a body cut short is an error for the reader", func(t *testing.T) {
		api := httptest.NewServer(hijacked("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"))
		t.Cleanup(api.Close)
		client := &http.Client{Transport: &reauth.Transport{Base: &http.Transport{}, Credentials: reauth.Bearer("token"), Origins: []string{api.URL}}}
		resp, err := client.Get(api.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})

	t.Run("NewClient retries a dying server, then says so", func(t *testing.T) {
		var attempts atomic.Int32
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			attempts.Add(1)
			hijacked("")(w, r)
		}))
		t.Cleanup(api.Close)
		c := reauth.NewClient(&reauth.Transport{Base: &http.Transport{}, Credentials: reauth.Bearer("token"), Origins: []string{api.URL}})
		c.RetryMax, c.RetryWaitMin, c.RetryWaitMax = 2, time.Millisecond, time.Millisecond
		err := returns(t, func() error {
			_, err := c.Get(api.URL)
			return err
		})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "giving up after 3 attempt(s)")
		assert.Equal(t, int32(3), attempts.Load())
	})
}

// TestContextCancelledAtEveryStep cancels the caller's context at each
// point where a request waits: the call must end at once with the
// context's error, whatever it was waiting for.
func TestContextCancelledAtEveryStep(t *testing.T) {
	type setup struct {
		url    string
		client *retryablehttp.Client
	}
	basicAPI := func(t *testing.T, retry http.HandlerFunc) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			retry(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	newClient := func(t *testing.T, creds reauth.Credentials, origins ...string) *retryablehttp.Client {
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		c := reauth.NewClient(&reauth.Transport{Base: base, Credentials: creds, Origins: origins})
		c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, time.Hour // Retry-After decides
		return c
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, arrived chan struct{}) setup
		// readBody: the caller signals arrived when it has the response,
		// and the cancel comes while it reads the body.
		readBody bool
	}{
		{"while the first request waits for its response", func(t *testing.T, arrived chan struct{}) setup {
			srv := httptest.NewServer(blockUntilGone(arrived))
			t.Cleanup(srv.Close)
			return setup{srv.URL, newClient(t, reauth.Bearer("token"), srv.URL)}
		}, false},
		{"while the retry after a challenge waits for its response", func(t *testing.T, arrived chan struct{}) setup {
			u := basicAPI(t, blockUntilGone(arrived))
			return setup{u, newClient(t, reauth.Basic("alice", "wonderland"), u)}
		}, false},
		{"while an OAuth2 token is fetched", func(t *testing.T, arrived chan struct{}) setup {
			endpoint := httptest.NewServer(blockUntilGone(arrived))
			t.Cleanup(endpoint.Close)
			api := bearerAPI(t)
			creds := reauth.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: endpoint.URL}, reauth.OAuth2Options{FetchTimeout: time.Second}) // a fetch outlives its request
			return setup{api.URL, newClient(t, creds, api.URL)}
		}, false},
		{"while a registry token is fetched", func(t *testing.T, arrived chan struct{}) setup {
			realm := httptest.NewServer(blockUntilGone(arrived))
			t.Cleanup(realm.Close)
			registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm.URL+`/token",service="reg",scope="repository:team/app:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			t.Cleanup(registry.Close)
			return setup{registry.URL + "/v2/team/app/manifests/latest", newClient(t, reauth.Registry("alice", "wonderland"), registry.URL, realm.URL)}
		}, false},
		{"while the retrying client waits out a Retry-After", func(t *testing.T, arrived chan struct{}) setup {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, reauth.Bearer("token"), srv.URL)
			// Called with each response, just before the wait for the retry.
			c.ResponseLogHook = func(retryablehttp.Logger, *http.Response) { arrived <- struct{}{} }
			return setup{srv.URL, c}
		}, false},
		{"while the caller reads the body", func(t *testing.T, arrived chan struct{}) setup {
			u := basicAPI(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, "the start")
				http.NewResponseController(w).Flush()
				blockUntilGone(nil)(w, r)
			})
			return setup{u, newClient(t, reauth.Basic("alice", "wonderland"), u)}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			s := tt.setup(t, arrived)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-arrived:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := returns(t, func() error {
				req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
				if err != nil {
					return err
				}
				resp, err := s.client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if !tt.readBody {
					return errors.New("got a response, the cancel came too late")
				}
				arrived <- struct{}{}
				_, err = io.ReadAll(bufio.NewReader(resp.Body))
				return err
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, context.Canceled, "error: %v", err)
		})
	}

	t.Run("before the request", func(t *testing.T) {
		var seen atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1) }))
		t.Cleanup(srv.Close)
		c := newClient(t, reauth.Bearer("token"), srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		_, err = c.Do(req)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, seen.Load(), "a request was sent after its context was cancelled")
	})
}
