package reauth_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/reauth/reauth"
)

// Credentials from a .netrc file, per origin: Transport.Keychain resolves
// them for each origin a request goes to, once, and sends them to that
// origin only. NetrcKeychain("") reads $NETRC or ~/.netrc, as curl and the
// go command do; a temporary file stands in for it here.
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
	client := &http.Client{Transport: &reauth.Transport{Keychain: kc}}
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

// The credentials a user keeps for the go command and for Docker, per
// origin: the first keychain that has credentials for an origin gives them,
// and only that origin gets them.
func ExampleKeychains() {
	goauth, err := reauth.GOAUTHKeychain(os.Getenv("GOAUTH"))
	if err != nil {
		fmt.Println(err) // a malformed GOAUTH, named
		return
	}
	docker, err := reauth.DockerKeychain("") // $DOCKER_CONFIG, else ~/.docker
	if err != nil {
		fmt.Println(err) // a config.json that does not parse, with its line
		return
	}
	client := &http.Client{Transport: &reauth.Transport{
		Keychain: reauth.Keychains(goauth, docker),
	}}
	_ = client // client.Get("https://registry.example.com/v2/"), …
}
