// Command registry lists the tags of a repository on a Docker/OCI registry,
// authenticating with reauth's registry token flow: the registry's 401
// names a token realm, reauth fetches a token for the repository's scope
// there and retries.
//
// Without -url it starts reauth's mock registry in-process:
//
//	go run ./examples/registry                                   # library/hello, anonymous
//	go run ./examples/registry -repo team/app -user bob -password builder
//	go run ./examples/registry -url http://127.0.0.1:8089 -repo team/app -user alice -password wonderland
//
// The last one talks to the mock command (go run ./mockserver/cmd/mockserver).
// A password on the command line is visible to other users of the machine;
// this is an example.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// maxPages bounds how many Link rel="next" pages are followed.
const maxPages = 100

func main() { os.Exit(exitCode(run(os.Args[1:], os.Stdout), os.Stderr)) }

// exitCode reports err on stderr and returns the exit status: 0 on success
// and for -h, which asks for the usage (run has printed it), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "registry:", err)
	return 1
}

// run parses args and writes the repository's tags to w, one per line.
func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: registry [-url BASE] [-repo NAME] [-user USER -password PASSWORD] [-realm-origin ORIGIN]")
		fmt.Fprintln(fs.Output(), "Lists the tags of a repository through the registry token flow. Without -url")
		fmt.Fprintln(fs.Output(), "it starts reauth's mock registry in-process and lists library/hello anonymously.")
		fs.PrintDefaults()
	}
	base := fs.String("url", "", "registry base URL, e.g. https://registry.example.com (default: the mock registry, in-process)")
	repo := fs.String("repo", "library/hello", "repository whose tags to list")
	user := fs.String("user", "", "user name for the token realm (default: anonymous)")
	password := fs.String("password", "", "password for the token realm")
	realm := fs.String("realm-origin", "", "origin of the token realm when it is not the registry's, e.g. https://auth.docker.io (the password goes only to bound origins)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *base == "" {
		srv := mockserver.New(mockserver.DefaultConfig())
		defer srv.Close()
		*base = srv.URL()
	}
	u, err := url.Parse(strings.TrimSuffix(*base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want http(s)://host[:port]", *base)
	}
	origins := []string{u.Scheme + "://" + u.Host}
	if *realm != "" {
		origins = append(origins, *realm)
	}

	client := &http.Client{
		Transport: &reauth.Transport{
			Credentials: reauth.Registry(*user, *password), // "" "" pulls anonymously
			Origins:     origins,                           // the registry, and its realm if elsewhere
		},
		Timeout: 30 * time.Second,
	}
	next := u.String() + "/v2/" + *repo + "/tags/list"
	for page := 0; next != "" && page < maxPages; page++ {
		var tags []string
		if tags, next, err = tagsPage(client, next); err != nil {
			return err
		}
		for _, tag := range tags {
			fmt.Fprintln(w, tag)
		}
	}
	return nil
}

// tagsPage fetches one page of a tags list and returns its tags and the
// URL of the next page ("" for none): the Link rel="next" of the
// distribution spec's pagination.
func tagsPage(client *http.Client, target string) (tags []string, next string, err error) {
	resp, err := client.Get(target)
	if err != nil {
		// reauth's errors say what the registry refused, without secrets.
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", resp.Request.URL.Redacted(), resp.Status)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list); err != nil {
		return nil, "", fmt.Errorf("reading the tags list: %w", err)
	}
	return list.Tags, nextLink(resp), nil
}

// nextLink returns the absolute URL of Link: <…>; rel="next", on the same
// origin as the response, or "".
func nextLink(resp *http.Response) string {
	for _, link := range resp.Header.Values("Link") {
		ref, params, ok := strings.Cut(link, ";")
		ref = strings.TrimSpace(ref)
		if !ok || !strings.HasPrefix(ref, "<") || !strings.HasSuffix(ref, ">") || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := resp.Request.URL.Parse(ref[1 : len(ref)-1])
		if err != nil || u.Host != resp.Request.URL.Host || u.Scheme != resp.Request.URL.Scheme {
			return ""
		}
		return u.String()
	}
	return ""
}
