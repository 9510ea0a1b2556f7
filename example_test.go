package reauth_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/reauth/reauth"
)

// A tiny API that wants Basic credentials, for the examples.
func exampleAPI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok || user != "alice" || pass != "wonderland":
			w.Header().Set("WWW-Authenticate", `Basic realm="example", charset="UTF-8"`)
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/admin":
			w.WriteHeader(http.StatusForbidden)
		default:
			io.WriteString(w, "hello, alice")
		}
	}))
}

// Wrap the transport of an http.Client (here http.DefaultTransport, as
// http.DefaultClient uses) so that it answers challenges from one origin.
// A 403 is final: the error matches ErrForbidden and is a *ForbiddenError.
func ExampleTransport() {
	api := exampleAPI()
	defer api.Close()

	client := &http.Client{Transport: &reauth.Transport{
		Base:        http.DefaultTransport,
		Credentials: reauth.Basic("alice", "wonderland"),
		Origins:     []string{api.URL}, // credentials go here and nowhere else
	}}

	resp, err := client.Get(api.URL + "/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))

	_, err = client.Get(api.URL + "/admin")
	var fe *reauth.ForbiddenError
	fmt.Println(errors.Is(err, reauth.ErrForbidden), errors.As(err, &fe) && fe.StatusCode == 403)
	// Output:
	// 200 hello, alice
	// true true
}

// NewClient adds go-retryablehttp's backoff for 429, 5xx and network errors,
// and never retries an auth failure.
func ExampleNewClient() {
	api := exampleAPI()
	defer api.Close()

	client := reauth.NewClient(&reauth.Transport{
		Credentials: reauth.Basic("alice", "wonderland"),
		Origins:     []string{api.URL},
	})
	resp, err := client.Get(api.URL + "/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	_, err = client.Get(api.URL + "/admin") // one request: 403 is final
	fmt.Println(errors.Is(err, reauth.ErrForbidden))
	// Output:
	// 200
	// true
}

// A static token goes with every request to the bound origin. When the API
// refuses it there is nothing new to offer: the error is final, matches
// ErrUnauthorized and says why. An empty token, such as an unset
// environment variable, is an error before anything is sent.
func ExampleBearer() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good-token" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()

	for _, token := range []string{"good-token", "revoked-token", ""} {
		client := &http.Client{Transport: &reauth.Transport{
			Credentials: reauth.Bearer(token),
			Origins:     []string{api.URL},
		}}
		resp, err := client.Get(api.URL + "/items")
		var ue *reauth.UnauthorizedError
		switch {
		case err == nil:
			resp.Body.Close()
			fmt.Println(resp.StatusCode)
		case errors.As(err, &ue):
			fmt.Println(ue.StatusCode, ue.Bearer.Code, errors.Is(err, reauth.ErrNoCredentials))
		default:
			fmt.Println(errors.Is(err, reauth.ErrMalformedCredentials))
		}
	}
	// Output:
	// 200
	// 401 invalid_token true
	// true
}
