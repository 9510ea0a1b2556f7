package negotiate

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/reauth/reauth"
)

// The adapter through a real reauth.Transport, against the in-process
// acceptor: no KDC, tickets made with a key the acceptor shares.

func testCredentials(t *testing.T, key types.EncryptionKey, opts ...Option) *negotiate {
	t.Helper()
	n := newTestNegotiator(t, key)
	for _, o := range opts {
		o(n)
	}
	return &negotiate{n}
}

// closeRecorder wraps a RoundTripper and records whether the bodies of the
// responses it returned were closed.
type closeRecorder struct {
	base   http.RoundTripper
	opened atomic.Int32
	closed atomic.Int32
}

type recordedBody struct {
	io.ReadCloser
	r    *closeRecorder
	once atomic.Bool
}

func (b *recordedBody) Close() error {
	if b.once.CompareAndSwap(false, true) {
		b.r.closed.Add(1)
	}
	return b.ReadCloser.Close()
}

func (c *closeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		c.opened.Add(1)
		resp.Body = &recordedBody{ReadCloser: resp.Body, r: c}
	}
	return resp, err
}

func originTransport(t *testing.T, creds reauth.Credentials, c *http.Client, u *url.URL) (*reauth.Transport, *closeRecorder) {
	t.Helper()
	rec := &closeRecorder{base: c.Transport}
	tr := &reauth.Transport{Base: rec, Credentials: creds, Origins: []string{u.String()}}
	return tr, rec
}

func get(t *testing.T, tr http.RoundTripper, u *url.URL) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// 200 in two requests (the challenge, the answer); later calls take two
// again by default, one with PreemptiveAfterChallenge. No token twice.
func TestNewRequestsPerCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		later int32
	}{
		{"default", nil, 2},
		{"PreemptiveAfterChallenge", []Option{PreemptiveAfterChallenge()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, u, c, key := serve(t, "")
			tr, _ := originTransport(t, testCredentials(t, key, tc.opts...), c, u)
			for call := range 3 {
				before := a.requests.Load()
				resp, err := get(t, tr, u)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("call %d: %v", call+1, err)
				}
				want := tc.later
				if call == 0 {
					want = 2
				}
				if got := a.requests.Load() - before; got != want {
					t.Errorf("call %d: %d requests, want %d", call+1, got, want)
				}
			}
			if a.repeated {
				t.Error("a token was sent twice")
			}
		})
	}
}

// A server that answers 401 Negotiate forever: the challenge, one token,
// and the request ends with a final *reauth.UnauthorizedError whose reason
// is ErrTokenRefused. Never the same token twice, never a third request.
func TestNewCeilingAgainstEndlessNegotiate(t *testing.T) {
	for _, preemptive := range []bool{false, true} {
		t.Run(fmt.Sprintf("preemptive=%v", preemptive), func(t *testing.T) {
			a, u, c, key := serve(t, "refuse")
			creds := reauth.Credentials(testCredentials(t, key))
			if preemptive {
				creds = reauth.Preemptive(creds)
			}
			tr, rec := originTransport(t, creds, c, u)
			resp, err := get(t, tr, u)
			if resp != nil {
				t.Fatalf("got a %d response, want an error", resp.StatusCode)
			}
			var ue *reauth.UnauthorizedError
			if !errors.As(err, &ue) || !errors.Is(err, ErrTokenRefused) || !errors.Is(err, reauth.ErrFinal) {
				t.Fatalf("err = %v, want a final *reauth.UnauthorizedError matching ErrTokenRefused", err)
			}
			want := int32(2)
			if preemptive {
				want = 1 // the token went up front and was refused
			}
			if got := a.requests.Load(); got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
			if msg := err.Error(); strings.Count(msg, "reauth: ") != 1 || !strings.Contains(msg, "HTTP/127.0.0.1") {
				t.Errorf("error %q: want one prefix and the principal", msg)
			}
			if strings.Contains(err.Error(), "YII") { // base64 of a SPNEGO token's 0x60 0x82 …
				t.Error("the error carries a token")
			}
			if a.repeated {
				t.Error("a token was sent twice")
			}
			if rec.closed.Load() != rec.opened.Load() {
				t.Errorf("%d response bodies opened, %d closed", rec.opened.Load(), rec.closed.Load())
			}
		})
	}
}

// A server whose token does not verify, or that sends none when mutual
// authentication is required: an error matching both ErrMutualAuthentication
// sentinels and ErrFinal, no response, and its body closed.
func TestNewMutualAuthenticationWithholdsTheResponse(t *testing.T) {
	for _, tc := range []struct {
		mode string
		opts []Option
	}{
		{"forged", nil},
		{"silent", []Option{RequireMutualAuthentication()}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			a, u, c, key := serve(t, tc.mode)
			tr, rec := originTransport(t, testCredentials(t, key, tc.opts...), c, u)
			resp, err := get(t, tr, u)
			if resp != nil {
				t.Fatalf("got a %d response, want it withheld", resp.StatusCode)
			}
			for _, target := range []error{ErrMutualAuthentication, reauth.ErrMutualAuthentication, reauth.ErrFinal} {
				if !errors.Is(err, target) {
					t.Errorf("err = %v, does not match %v", err, target)
				}
			}
			if got := a.requests.Load(); got != 2 {
				t.Errorf("%d requests, want 2", got)
			}
			if rec.opened.Load() != 2 || rec.closed.Load() != 2 {
				t.Errorf("%d response bodies opened, %d closed; want 2, 2", rec.opened.Load(), rec.closed.Load())
			}
		})
	}
	t.Run("silent, not required", func(t *testing.T) {
		_, u, c, key := serve(t, "silent")
		tr, _ := originTransport(t, testCredentials(t, key), c, u)
		if resp, err := get(t, tr, u); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%v; want 200", err)
		}
	})
}

// The proxy leg: a plain-http request through a Negotiate proxy gets the
// 407 answered with a token for the proxy's principal, in
// Proxy-Authorization, and the proxy's token on the final response is
// verified from Proxy-Authenticate.
func TestNewProxyLeg(t *testing.T) {
	for _, mode := range []string{"", "forged", "refuse"} {
		t.Run("mode="+mode, func(t *testing.T) {
			key := randomKey(t)
			a := &acceptor{t: t, key: key, mode: mode, proxy: true, tokens: map[string]bool{}}
			proxy := httptest.NewServer(a)
			t.Cleanup(proxy.Close)
			pu, err := url.Parse(proxy.URL)
			if err != nil {
				t.Fatal(err)
			}
			tr := &reauth.Transport{
				Base:             &http.Transport{Proxy: http.ProxyURL(pu)},
				ProxyCredentials: testCredentials(t, key),
			}
			// The proxy answers itself: origin.test is never dialled.
			resp, err := get(t, tr, &url.URL{Scheme: "http", Host: "origin.test", Path: "/"})
			switch mode {
			case "":
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%v; want 200", err)
				}
			case "forged":
				if resp != nil || !errors.Is(err, reauth.ErrMutualAuthentication) {
					t.Fatalf("err = %v, want ErrMutualAuthentication and no response", err)
				}
			case "refuse":
				var ue *reauth.UnauthorizedError
				if !errors.As(err, &ue) || ue.StatusCode != http.StatusProxyAuthRequired || !errors.Is(err, ErrTokenRefused) {
					t.Fatalf("err = %v, want a 407 *reauth.UnauthorizedError matching ErrTokenRefused", err)
				}
			}
			if got := a.requests.Load(); got != 2 {
				t.Errorf("%d requests, want 2", got)
			}
			if a.repeated {
				t.Error("a token was sent twice")
			}
		})
	}
}

// A KDC that refuses is final: the request ends at the challenge, with an
// error matching ErrKDCRefused and reauth.ErrFinal. A KDC that does not
// answer is bounded by the request's context.
func TestNewTicketErrors(t *testing.T) {
	t.Run("KDC refused", func(t *testing.T) {
		a, u, c, key := serve(t, "")
		creds := testCredentials(t, key)
		creds.n.token = func(spn string) (string, *secContext, error) {
			return "", nil, fmt.Errorf("%w for %s: KDC_ERR_C_PRINCIPAL_UNKNOWN", ErrKDCRefused, spn)
		}
		tr, _ := originTransport(t, creds, c, u)
		_, err := get(t, tr, u)
		if !errors.Is(err, ErrKDCRefused) || !errors.Is(err, reauth.ErrFinal) {
			t.Fatalf("err = %v, want ErrKDCRefused, final", err)
		}
		if got := a.requests.Load(); got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
	})
	t.Run("KDC silent", func(t *testing.T) {
		_, u, c, key := serve(t, "")
		creds := testCredentials(t, key)
		release := make(chan struct{})
		defer close(release)
		asked := make(chan struct{}, 1)
		creds.n.token = func(string) (string, *secContext, error) {
			asked <- struct{}{}
			<-release
			return "", nil, errors.New("released")
		}
		tr, _ := originTransport(t, creds, c, u)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-asked; cancel() }()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if resp != nil || !errors.Is(err, context.Canceled) || errors.Is(err, reauth.ErrFinal) {
			t.Fatalf("err = %v, want context.Canceled, not final", err)
		}
	})
}

// String and the errors never show the client, a ticket or a key.
func TestNewString(t *testing.T) {
	if got := fmt.Sprint(New(nil)); got != "negotiate.New(redacted)" {
		t.Errorf("fmt.Sprint = %q", got)
	}
}

// New(nil) fails at the first challenge with a final error that says how
// to build a client.
func TestNewWithoutClient(t *testing.T) {
	_, u, c, _ := serve(t, "")
	tr, _ := originTransport(t, New(nil), c, u)
	_, err := get(t, tr, u)
	if !errors.Is(err, reauth.ErrFinal) || !strings.Contains(err.Error(), "client.NewWithKeytab") {
		t.Fatalf("err = %v, want a final error naming client.NewWithKeytab", err)
	}
}

// A CONNECT through a Negotiate proxy that refuses every token: the first
// CONNECT carries a token (the configured proxy is a declared protection
// space), its refusal ends the request, and no second CONNECT goes.
func TestNewConnectRefusedTokenEndsTheRequest(t *testing.T) {
	key := randomKey(t)
	a := &acceptor{t: t, key: key, mode: "refuse", proxy: true, tokens: map[string]bool{}}
	proxy := httptest.NewServer(a)
	t.Cleanup(proxy.Close)
	pu, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &reauth.Transport{
		Base:             &http.Transport{Proxy: http.ProxyURL(pu)},
		ProxyCredentials: testCredentials(t, key),
	}
	// The CONNECT is refused: origin.test is never dialled.
	resp, err := get(t, tr, &url.URL{Scheme: "https", Host: "origin.test", Path: "/"})
	var pe *reauth.UnauthorizedError
	if resp != nil || !errors.As(err, &pe) || pe.StatusCode != http.StatusProxyAuthRequired || pe.Method != http.MethodConnect || !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("err = %v, want a CONNECT 407 *reauth.UnauthorizedError matching ErrTokenRefused", err)
	}
	if got := a.requests.Load(); got != 1 {
		t.Errorf("%d CONNECTs, want 1", got)
	}
	if a.repeated {
		t.Error("a token was sent twice")
	}
}

// No token, and so no ticket or authenticator, reaches the Transport's
// logs, events or errors, whether the token is accepted, refused, or its
// answer forged.
func TestNewTokensNeverInLogsEventsOrErrors(t *testing.T) {
	for _, mode := range []string{"", "refuse", "forged"} {
		t.Run("mode="+mode, func(t *testing.T) {
			a, u, c, key := serve(t, mode)
			var text strings.Builder
			var mu sync.Mutex
			tr, _ := originTransport(t, testCredentials(t, key), c, u)
			tr.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &text, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			tr.OnEvent = func(e reauth.Event) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(&text, "%+v\n", e)
			}
			_, err := get(t, tr, u)
			mu.Lock()
			if err != nil {
				fmt.Fprintf(&text, "%v %+v\n", err, err)
			}
			all := text.String()
			mu.Unlock()
			if all == "" {
				t.Fatal("nothing was logged: the test checks nothing")
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if len(a.tokens) == 0 {
				t.Fatal("no token reached the server")
			}
			for tok := range a.tokens {
				if strings.Contains(all, tok) || strings.Contains(all, tok[:32]) {
					t.Error("a token (or its start) is in the logs, events or error")
				}
			}
		})
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// One Credentials value serves concurrent requests: every call succeeds,
// its server token verifies against its own context, and no token is sent
// twice.
func TestNewConcurrentRequests(t *testing.T) {
	a, u, c, key := serve(t, "")
	tr, _ := originTransport(t, testCredentials(t, key, PreemptiveAfterChallenge(), RequireMutualAuthentication()), c, u)
	var wg sync.WaitGroup
	errs := make(chan error, 16*5)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				resp, err := get(t, tr, u)
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if a.repeated {
		t.Error("a token was sent twice")
	}
	if n := a.requests.Load(); n < 80 || n > 80+16 {
		t.Errorf("%d requests for 80 calls, want 80 to 96 (a challenge for each call that started before the first)", n)
	}
}
