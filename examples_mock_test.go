package reauth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// The examples below run against reauth's bundled mock server
// (github.com/reauth/reauth/mockserver), as go run ./examples/… do.

// printLog prints what the mock server saw under prefix: the scheme of the
// credentials each request carried, and the status it got.
func printLog(srv *mockserver.Server, prefix string) {
	for _, r := range srv.RequestsTo(prefix) {
		scheme := r.Scheme
		if scheme == "" {
			scheme = "none"
		}
		fmt.Println(" ", scheme, r.Status)
	}
}

// Basic credentials are sent once the origin has challenged for them, and
// from then on up front: two calls cost three requests. A wrong password is
// retried once, then reported as a typed error.
func ExampleBasic() {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()

	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.Basic("alice", "wonderland"),
		Origins:     []string{srv.URL()}, // the credentials go here and nowhere else
	}}
	for range 2 {
		resp, err := client.Get(srv.URL() + "/basic/")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println("the server saw:")
	printLog(srv, "/basic/")

	wrong := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.Basic("alice", "not-the-password"),
		Origins:     []string{srv.URL()},
	}}
	_, err := wrong.Get(srv.URL() + "/basic/")
	var ue *reauth.UnauthorizedError
	if errors.As(err, &ue) {
		fmt.Println(ue.StatusCode, ue.Attempts, errors.Is(err, reauth.ErrRefusedAfterRetry))
	}
	// Output:
	// 200
	// 200
	// the server saw:
	//   none 401
	//   Basic 200
	//   Basic 200
	// 401 2 true
}

// Digest answers the strongest challenge the server offers (here, at
// /digest/strongest/, SHA-512-256 over SHA-256 and MD5), then answers up
// front with the same nonce and the next nonce count: one request per call.
func ExampleDigest() {
	cfg := mockserver.DefaultConfig()
	cfg.Digest.Algorithms = []string{"SHA-512-256", "SHA-256", "MD5"} // what /digest/ offers
	srv := mockserver.New(cfg)
	defer srv.Close()

	client := &http.Client{Transport: &reauth.Transport{
		Credentials: reauth.Digest("alice", "wonderland"),
		Origins:     []string{srv.URL()},
	}}
	for range 3 {
		resp, err := client.Get(srv.URL() + "/digest/strongest/")
		if err != nil {
			fmt.Println(err)
			return
		}
		var got struct{ User, Algorithm, Qop string } // the mock says how it was answered
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(resp.StatusCode, got.User, got.Algorithm, got.Qop)
	}
	fmt.Println("the server saw:")
	for _, r := range srv.RequestsTo("/digest/strongest/") {
		if r.Scheme == "" {
			fmt.Println("  none", r.Status)
			continue
		}
		// The log shows Digest credentials redacted: username, algorithm, qop, nc.
		_, nc, _ := strings.Cut(r.Credential, " nc=")
		nc, _, _ = strings.Cut(nc, " ")
		fmt.Println(" ", r.Scheme, r.Status, "nc="+nc)
	}
	// Output:
	// 200 alice SHA-512-256 auth
	// 200 alice SHA-512-256 auth
	// 200 alice SHA-512-256 auth
	// the server saw:
	//   none 401
	//   Digest 200 nc=00000001
	//   Digest 200 nc=00000002
	//   Digest 200 nc=00000003
}

// NewClient retries 429 and 503 as Retry-After asks, and never an auth
// failure: the 403 below is one call of two requests (challenge, answer),
// with no backoff retry.
func ExampleNewClient_retryAfter() {
	cfg := mockserver.DefaultConfig()
	cfg.Status.FailFirst = 1            // one 503 before success
	cfg.Status.RetryAfter = time.Second // Retry-After: 1
	srv := mockserver.New(cfg)
	defer srv.Close()

	client := reauth.NewClient(&reauth.Transport{
		Credentials: reauth.Basic("bob", "builder"),
		Origins:     []string{srv.URL()},
	})
	resp, err := client.Get(srv.URL() + "/status/503/")
	if err != nil {
		fmt.Println(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	printLog(srv, "/status/503/")

	_, err = client.Get(srv.URL() + "/forbidden/") // bob is not an admin
	fmt.Println(errors.Is(err, reauth.ErrForbidden))
	printLog(srv, "/forbidden/")
	// Output:
	// 200
	//   none 503
	//   none 200
	// true
	//   none 401
	//   Basic 403
}
