package reauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request that already carries Authorization (or Proxy-Authorization) is
// the caller's for that leg: sent as it is, never replaced, never retried.

func callerBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestTheCallersAuthorizationIsSentAsItIs(t *testing.T) {
	mine := callerBasic("caller", "caller-pw")
	for _, creds := range []Credentials{Bearer(testToken), Basic(testUser, testPassword), Preemptive(Basic(testUser, testPassword))} {
		t.Run(describeCredentials(creds), func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != mine {
					challenging(http.StatusUnauthorized)(w, r)
					return
				}
				okHandler(w, r)
			})
			tr := &Transport{Credentials: creds, Origins: []string{srv.URL}}
			req, err := http.NewRequest("GET", srv.URL, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", mine)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			reqs := srv.requests()
			require.Len(t, reqs, 1)
			assert.True(t, reqs[0].Authorization == mine, "the caller's value went as it is")
		})
	}
}

func TestTheCallersRefusedAuthorizationIsNotRetried(t *testing.T) {
	wrong := callerBasic("caller", "wrong-pw")
	for _, returnResponse := range []bool{false, true} {
		srv := newRecorder(t, basicServer)
		var l listener
		tr := l.attach(&Transport{Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}, ReturnResponse: returnResponse})
		req, err := http.NewRequest("GET", srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", wrong)
		resp, err := tr.RoundTrip(req)
		if returnResponse {
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		} else {
			var ue *UnauthorizedError
			require.ErrorAs(t, err, &ue)
			assert.ErrorIs(t, err, ErrCallerCredentials)
			assert.Equal(t, 1, ue.Attempts)
		}
		reqs := srv.requests()
		require.Len(t, reqs, 1, "no retry of the caller's leg")
		assert.True(t, reqs[0].Authorization == wrong, "never replaced")
		e := l.only(t, EventGiveUp)
		assert.ErrorIs(t, e.Err, ErrCallerCredentials)
		assert.False(t, e.Proxy)
		assert.Contains(t, l.log(), "own Authorization or Proxy-Authorization was refused")
	}
}

func TestTheCallersProxyAuthorizationIsNotRetried(t *testing.T) {
	proxy := basicProxy(t)
	origin := newRecorder(t, okHandler)
	pu, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	wrong := callerBasic("proxyuser", "wrong-pw")
	var l listener
	tr := l.attach(&Transport{Base: &http.Transport{}, Proxy: http.ProxyURL(pu), ProxyCredentials: Basic("proxyuser", proxyPassword)})
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest("GET", origin.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", wrong)
	_, err = tr.RoundTrip(req)
	var ue *UnauthorizedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, http.StatusProxyAuthRequired, ue.StatusCode)
	assert.ErrorIs(t, err, ErrCallerCredentials)
	fw := proxy.forwarded()
	require.Len(t, fw, 1, "no retry of the caller's leg")
	assert.True(t, fw[0] == wrong, "never replaced")
	assert.True(t, l.only(t, EventGiveUp).Proxy)

	// The caller's proxy leg does not stop reauth from answering the origin.
	srv := newRecorder(t, basicServer)
	good := callerBasic("proxyuser", proxyPassword)
	tr = &Transport{Base: &http.Transport{}, Proxy: http.ProxyURL(pu), ProxyCredentials: Basic("proxyuser", "unused"),
		Credentials: Basic(testUser, testPassword), Origins: []string{srv.URL}}
	t.Cleanup(tr.CloseIdleConnections)
	req, err = http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", good)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	for _, v := range proxy.forwarded()[1:] {
		assert.True(t, v == good, "the caller's Proxy-Authorization on every attempt")
	}
}

// A caller's Authorization without a scheme (a bare API key) is all secret:
// the events that name the scheme of what was sent must not carry it.
func TestTheCallersBareKeyIsNotNamedAsAScheme(t *testing.T) {
	const key = "bare-api-key-SENTINEL"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	var events []Event
	tr := &Transport{Credentials: Bearer(testToken), Origins: []string{srv.URL}, OnEvent: func(e Event) { events = append(events, e) }}
	req := httptest.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.RequestURI = ""
	req.Header.Set("Authorization", key)
	_, err := tr.RoundTrip(req)
	require.ErrorIs(t, err, ErrCallerCredentials)
	require.NotEmpty(t, events)
	for _, e := range events {
		assert.NotContains(t, e.Scheme, "SENTINEL", "event %v names the key as its scheme", e.Kind)
	}
}
