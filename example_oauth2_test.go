package reauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/reauth/reauth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// exampleOAuthServer is an authorization server and an API in one: /token
// issues tokens for the client credentials and refresh token grants and
// rotates refresh tokens; /api accepts the newest access token only (older
// ones count as revoked); /api/admin also wants a token from a step-up
// login, and says so with an RFC 9470 challenge.
func exampleOAuthServer() *httptest.Server {
	var mu sync.Mutex
	n, current, stepped := 0, "", "stepped-up-token"
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			n++
			current = fmt.Sprintf("access-%d", n)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"access_token": current, "token_type": "Bearer", "expires_in": 3600,
				"refresh_token": fmt.Sprintf("refresh-%d", n),
			})
			return
		}
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case token == stepped:
			io.WriteString(w, "admin ok")
		case token != current:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/api/admin":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", acr_values="mfa", max_age="300"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			io.WriteString(w, "ok")
		}
	}))
}

func printOAuthGet(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
}

// A service calling an API with the client credentials grant. When the API
// refuses the token (revoked, rotated keys), a new one is fetched and the
// request retried once; x/oauth2 alone would keep sending the refused token
// until it expires.
func ExampleClientCredentials() {
	srv := exampleOAuthServer()
	defer srv.Close()

	creds := reauth.ClientCredentials(&clientcredentials.Config{
		ClientID:     "my-service",
		ClientSecret: "s3cr3t",
		TokenURL:     srv.URL + "/token",
		Scopes:       []string{"items:read"},
	}, reauth.OAuth2Options{})
	client := reauth.NewClient(&reauth.Transport{
		Credentials: creds,
		Origins:     []string{srv.URL}, // the token goes here and nowhere else
	}).StandardClient()

	printOAuthGet(client, srv.URL+"/api/items")

	// Another instance of the service fetches a token: ours is now refused.
	if resp, err := http.Post(srv.URL+"/token", "application/x-www-form-urlencoded", nil); err == nil {
		resp.Body.Close()
	}
	printOAuthGet(client, srv.URL+"/api/items")
	// Output:
	// 200 ok
	// 200 ok
}

// A user's refresh token, saved between runs. The server rotates refresh
// tokens, so each new one is saved as it arrives (OnToken).
func ExampleRefreshToken() {
	srv := exampleOAuthServer()
	defer srv.Close()

	saved := &oauth2.Token{RefreshToken: "refresh-from-last-run"} // load it from your store
	cfg := &oauth2.Config{ClientID: "my-app", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token"}}
	creds := reauth.RefreshToken(cfg, saved, reauth.OAuth2Options{
		OnToken: func(ctx context.Context, tok *oauth2.Token) error {
			fmt.Println("save refresh token", tok.RefreshToken) // write it to your store
			return nil
		},
	})
	client := &http.Client{Transport: &reauth.Transport{Credentials: creds, Origins: []string{srv.URL}}}

	printOAuthGet(client, srv.URL+"/api/items")
	// Output:
	// save refresh token refresh-1
	// 200 ok
}

// A step-up challenge (RFC 9470): the API wants a stronger login for
// /api/admin. The hook gets what the server asked for and returns a token
// that satisfies it; without a hook the caller gets the challenge in an
// *UnauthorizedError instead.
func ExampleOAuth2Options_stepUp() {
	srv := exampleOAuthServer()
	defer srv.Close()

	cfg := &clientcredentials.Config{ClientID: "my-app", ClientSecret: "s3cr3t", TokenURL: srv.URL + "/token"}
	stepUp := func(ctx context.Context, ch *reauth.StepUpChallenge) (*oauth2.Token, error) {
		fmt.Println("login again with acr_values", ch.ACRValues, "max_age", ch.MaxAge)
		// e.g. oauth2.Config.AuthCodeURL(state, oauth2.SetAuthURLParam("acr_values", "mfa")),
		// then Exchange the code the user brings back.
		return &oauth2.Token{AccessToken: "stepped-up-token"}, nil
	}

	with := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{StepUp: stepUp}),
		Origins:     []string{srv.URL},
	}}
	printOAuthGet(with, srv.URL+"/api/admin")

	without := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{}),
		Origins:     []string{srv.URL},
	}}
	_, err := without.Get(srv.URL + "/api/admin")
	var ue *reauth.UnauthorizedError
	if errors.As(err, &ue) {
		fmt.Println(errors.Is(err, reauth.ErrStepUpRequired), ue.Bearer.ACRValues, ue.Bearer.MaxAge)
	}
	// Output:
	// login again with acr_values [mfa] max_age 5m0s
	// 200 admin ok
	// true mfa 300
}
