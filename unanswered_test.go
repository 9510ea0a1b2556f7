package reauth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Nothing fails silently: a 401 or 407 that reauth saw and did not answer is
// an event and a debug log line saying why, and a configuration that cannot
// work is an error at first use.

// listener records a Transport's events and debug log.
type listener struct {
	mu     sync.Mutex
	events []Event
	logs   bytes.Buffer
}

func (l *listener) attach(tr *Transport) *Transport {
	tr.OnEvent = func(e Event) {
		l.mu.Lock()
		l.events = append(l.events, e)
		l.mu.Unlock()
	}
	tr.Logger = slog.New(slog.NewTextHandler(&lockedWriter{l: l}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return tr
}

type lockedWriter struct{ l *listener }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.logs.Write(p)
}

func (l *listener) only(t *testing.T, kind EventKind) Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []Event
	for _, e := range l.events {
		if e.Kind == kind {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "one %s event", kind)
	return found[0]
}

func (l *listener) log() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logs.String()
}

func challenging(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusProxyAuthRequired {
			w.Header().Set("Proxy-Authenticate", `Basic realm="p"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="o"`)
		}
		w.WriteHeader(status)
	}
}

func TestUnansweredChallengesAreReportedWithTheReason(t *testing.T) {
	srv := newRecorder(t, challenging(http.StatusUnauthorized))
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	port := u.Port()
	tests := []struct {
		name    string
		tr      *Transport
		is      error
		reasons []string // parts of the reason, which names the fix
	}{
		{
			name: "localhost listed, 127.0.0.1 requested",
			tr:   &Transport{Credentials: Bearer(testToken), Origins: []string{"http://localhost:" + port}},
			is:   ErrUnboundOrigin,
			reasons: []string{"http://127.0.0.1:" + port, "close to it in Origins: http://localhost:" + port,
				"localhost and 127.0.0.1 are different origins"},
		},
		{
			name:    "an origin without its port",
			tr:      &Transport{Credentials: Bearer(testToken), Origins: []string{"http://127.0.0.1"}},
			is:      ErrUnboundOrigin,
			reasons: []string{"close to it in Origins: http://127.0.0.1:80 (port 80, not " + port + ")"},
		},
		{
			name:    "an https origin, an http request",
			tr:      &Transport{Credentials: Bearer(testToken), Origins: []string{"https://127.0.0.1:" + port}},
			is:      ErrUnboundOrigin,
			reasons: []string{"(scheme https, not http)"},
		},
		{
			name:    "an origin far from every listed one",
			tr:      &Transport{Credentials: Bearer(testToken), Origins: []string{"https://api.example.com"}},
			is:      ErrUnboundOrigin,
			reasons: []string{"add it to Origins"},
		},
		{
			name:    "no credentials at all",
			tr:      &Transport{},
			is:      ErrNoCredentials,
			reasons: []string{"Transport.Credentials is nil"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l listener
			resp, err := get(t, clientFor(l.attach(tt.tr)), srv.URL+"/x?q=1")
			require.NoError(t, err, "an unbound request is passed through")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			e := l.only(t, EventUnanswered)
			assert.Equal(t, http.StatusUnauthorized, e.StatusCode)
			assert.Equal(t, srv.URL+"/x", e.URL)
			require.ErrorIs(t, e.Err, tt.is)
			for _, r := range tt.reasons {
				assert.Contains(t, e.Err.Error(), r)
			}
			assert.Contains(t, l.log(), "reauth: unanswered")
			assert.Contains(t, l.log(), tt.reasons[0])
			assertNoSecret(t, "the log", l.log())
		})
	}
}

func TestUnansweredProxyChallengesAreReported(t *testing.T) {
	fake := newRecorder(t, challenging(http.StatusProxyAuthRequired))
	t.Run("no proxy credentials", func(t *testing.T) {
		var l listener
		resp, err := get(t, clientFor(l.attach(&Transport{})), fake.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
		e := l.only(t, EventUnanswered)
		assert.True(t, e.Proxy)
		assert.ErrorIs(t, e.Err, ErrNoCredentials)
		assert.ErrorContains(t, e.Err, "Transport.ProxyCredentials is nil")
	})
	t.Run("no proxy in the path", func(t *testing.T) {
		var l listener
		tr := l.attach(&Transport{Base: &http.Transport{}, ProxyCredentials: Basic("proxyuser", proxyPassword)})
		resp, err := get(t, clientFor(tr), fake.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
		e := l.only(t, EventUnanswered)
		assert.ErrorContains(t, e.Err, "went through no proxy")
		assert.Empty(t, fake.requests()[len(fake.requests())-1].ProxyAuthorization)
	})
	t.Run("a bound origin's 407", func(t *testing.T) {
		var l listener
		tr := l.attach(&Transport{Credentials: Bearer(testToken), Origins: []string{fake.URL}})
		resp, err := get(t, clientFor(tr), fake.URL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
		assert.ErrorContains(t, l.only(t, EventUnanswered).Err, "Transport.ProxyCredentials is nil")
	})
}

func TestNoEventWhenNothingWasRefused(t *testing.T) {
	srv := newRecorder(t, okHandler)
	for name, tr := range map[string]*Transport{
		"pass-through": {},
		"bound":        {Credentials: Bearer(testToken), Origins: []string{srv.URL}},
	} {
		t.Run(name, func(t *testing.T) {
			var l listener
			_, err := get(t, clientFor(l.attach(tr)), srv.URL)
			require.NoError(t, err)
			assert.Empty(t, l.events)
			assert.Empty(t, l.log())
		})
	}
}

func TestConfigurationsThatCannotWorkAreErrors(t *testing.T) {
	logging := roundTripFunc(func(r *http.Request) (*http.Response, error) { return http.DefaultTransport.RoundTrip(r) })
	tests := []struct {
		name string
		tr   *Transport
		is   error
		fix  string
	}{
		{"Origins without Credentials", &Transport{Origins: []string{"https://api.example.com"}}, ErrNoCredentialsForOrigins, "Credentials: reauth.Bearer(token)"},
		{"ProxyCredentials over a wrapping Base without Proxy", &Transport{Base: logging, ProxyCredentials: Basic("proxyuser", proxyPassword)}, ErrProxyUnknown, "Proxy: http.ProxyFromEnvironment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &closeCounter{Reader: strings.NewReader("x")}
			req, err := http.NewRequest("POST", "https://api.example.com/", body)
			require.NoError(t, err)
			_, err = tt.tr.RoundTrip(req)
			require.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), tt.fix)
			assert.Equal(t, int32(1), body.closes.Load(), "the body is closed once")
		})
	}
}
