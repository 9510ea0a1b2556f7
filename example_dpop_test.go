package reauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// With OAuth2Options.DPoP, tokens are bound to a key (RFC 9449): the token
// request carries a proof, every request to the API carries the token as
// "DPoP <token>" and a fresh proof, and server nonces are answered once and
// then remembered. ClientKey would replace the client secret with a signed
// assertion (private_key_jwt, RFC 7523) the same way.
func ExampleOAuth2Options_dpop() {
	srv := mockserver.New(mockserver.DefaultConfig()) // a token endpoint and an API that require nonces
	defer srv.Close()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // or a KMS key: any crypto.Signer
	if err != nil {
		fmt.Println(err)
		return
	}
	cc := &clientcredentials.Config{ClientID: "reauth-client", ClientSecret: "reauth-secret", TokenURL: srv.URL() + "/dpop/nonce/token"}
	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.ClientCredentials(cc, reauth.OAuth2Options{DPoP: key}),
		Origins:     []string{srv.URL()},
	}}
	for range 3 {
		resp, err := client.Get(srv.URL() + "/dpop/nonce/resource")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	seen := func(path string) (st []int) { // what the server saw
		for _, r := range srv.RequestsTo(path) {
			st = append(st, r.Status)
		}
		return st
	}
	fmt.Println("token endpoint:", seen("/dpop/nonce/token"))
	fmt.Println("resource:", seen("/dpop/nonce/resource"))
	// Output:
	// 200
	// 200
	// 200
	// token endpoint: [400 200]
	// resource: [401 200 200 200]
}
