package reauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/reauth/reauth"
)

// Credentials from a .netrc file, resolved for the one origin a client
// talks to. NetrcKeychain("") reads $NETRC or ~/.netrc, as curl and the go
// command do; a temporary file stands in for it here.
func ExampleNetrcKeychain() {
	api := exampleAPI()
	defer api.Close()
	dir, _ := os.MkdirTemp("", "netrc")
	defer os.RemoveAll(dir)
	netrc := filepath.Join(dir, ".netrc")
	os.WriteFile(netrc, []byte("machine 127.0.0.1 login alice password wonderland\n"), 0o600)

	kc, err := reauth.NetrcKeychain(netrc)
	if err != nil {
		fmt.Println(err)
		return
	}
	creds, err := kc.Resolve(context.Background(), api.URL)
	if err != nil || creds == nil {
		fmt.Println("no login for", api.URL, err)
		return
	}
	client := &http.Client{Transport: &reauth.Transport{Credentials: creds, Origins: []string{api.URL}}}
	resp, err := client.Get(api.URL + "/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello, alice
}

// Ask the go command's GOAUTH helpers first, then Docker's config.json: the
// first keychain that has credentials for an origin gives them.
func ExampleKeychains() {
	var keychains []reauth.Keychain
	if kc, err := reauth.GOAUTHKeychain("netrc"); err == nil {
		keychains = append(keychains, kc)
	}
	if kc, err := reauth.DockerKeychain(""); err == nil {
		keychains = append(keychains, kc)
	}
	kc := reauth.Keychains(keychains...)
	_, err := kc.Resolve(context.Background(), "https://registry.example.com")
	fmt.Println(err)
}
