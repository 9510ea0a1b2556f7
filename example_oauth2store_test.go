package reauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
)

// Two clients that share a FileStore, as two processes would: the second
// takes the token the first fetched, and the token endpoint is asked once.
func ExampleOAuth2Options_store() {
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			fetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"shared-token","token_type":"Bearer","expires_in":3600}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer shared-token" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	dir, err := os.MkdirTemp("", "reauth-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := reauth.NewFileStore(filepath.Join(dir, "tokens"))
	if err != nil {
		panic(err)
	}
	cfg := &clientcredentials.Config{ClientID: "my-client", ClientSecret: "my-secret", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	for range 2 { // two "processes"
		client := &http.Client{Transport: &reauth.Transport{
			Credentials: reauth.ClientCredentials(cfg, reauth.OAuth2Options{Store: store}),
			Origins:     []string{srv.URL},
		}}
		resp, err := client.Get(srv.URL + "/resource")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println("token fetches:", fetches.Load())
	// Output:
	// 200
	// 200
	// token fetches: 1
}
