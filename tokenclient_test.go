package reauth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// http.DefaultClient's Transport is a reauth Transport bound to the origin
// that serves both the API and its token endpoint, the way reauth is meant
// to be used. The token requests of reauth's own credentials go through the
// Transport's Base, not http.DefaultClient: they do not wait for the very
// token they fetch (a self-deadlock until the context ends), and the token
// endpoint sees x/oauth2's client authentication (AuthStyleAutoDetect tries
// Basic first) exactly as sent, once, against a server that refuses "the
// client authenticated twice".
//
// Not parallel: it changes http.DefaultClient.
func TestTokenRequestsBypassAWrappedDefaultClient(t *testing.T) {
	tests := []struct {
		name  string
		creds func(t *testing.T, srv *mockserver.Server) reauth.Credentials
	}{
		{"ClientCredentials", func(t *testing.T, srv *mockserver.Server) reauth.Credentials {
			cfg := &clientcredentials.Config{ClientID: mockClientID, ClientSecret: mockClientSecret, TokenURL: srv.URL() + "/oauth2/token"}
			return reauth.ClientCredentials(cfg, reauth.OAuth2Options{})
		}},
		{"RefreshToken", func(t *testing.T, srv *mockserver.Server) reauth.Credentials {
			cfg := &oauth2.Config{ClientID: mockClientID, ClientSecret: mockClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.URL() + "/oauth2/token"}}
			hc := &http.Client{Transport: http.DefaultTransport}
			initial, err := cfg.PasswordCredentialsToken(context.WithValue(t.Context(), oauth2.HTTPClient, hc), "alice", "wonderland")
			require.NoError(t, err)
			return reauth.RefreshToken(cfg, &oauth2.Token{RefreshToken: initial.RefreshToken}, reauth.OAuth2Options{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t)
			creds := tt.creds(t, srv)
			srv.ResetRequests()
			saved := http.DefaultClient.Transport
			t.Cleanup(func() { http.DefaultClient.Transport = saved })
			http.DefaultClient.Transport = &reauth.Transport{Credentials: creds, Origins: []string{srv.URL()}}

			// The deadline only guards against the deadlock this test is about.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := getJSON(ctx, http.DefaultClient, srv.URL()+"/oauth2/resource")
			require.NoError(t, err)

			tokenRequests := srv.RequestsTo("/oauth2/token")
			require.Equal(t, []int{200}, statuses(tokenRequests), "one token request, granted")
			assert.Equal(t, "Basic", tokenRequests[0].Scheme, "x/oauth2's client authentication, not reauth's")
			assert.Equal(t, []int{200}, statuses(srv.RequestsTo("/oauth2/resource")))
		})
	}
}
