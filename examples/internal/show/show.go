// Package show prints, for the examples, what reauth decided and what the
// mock server saw. Nothing it prints holds a secret: events carry no
// credential values, and the mock server's log shows credentials redacted.
package show

import (
	"fmt"
	"io"
	"strings"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

// Events returns a Transport.OnEvent that writes each decision to w.
func Events(w io.Writer) func(reauth.Event) {
	return func(e reauth.Event) {
		switch e.Kind {
		case reauth.EventChallenge:
			chs := make([]string, len(e.Challenges))
			for i, c := range e.Challenges {
				chs[i] = c.Scheme
				if alg := c.Params["algorithm"]; alg != "" {
					chs[i] += " " + alg
				}
			}
			fmt.Fprintf(w, "  server: %d, challenges: %s\n", e.StatusCode, strings.Join(chs, ", "))
		case reauth.EventRetry:
			fmt.Fprintf(w, "  reauth: retrying with %s credentials\n", e.Scheme)
		case reauth.EventGiveUp:
			fmt.Fprintf(w, "  reauth: giving up: %v\n", e.Err)
		case reauth.EventForbidden:
			fmt.Fprintf(w, "  reauth: 403 is final, not retried\n")
		}
	}
}

// Requests writes the requests the mock server logged under prefix: the
// credentials each carried (redacted by the server) and the status sent.
func Requests(w io.Writer, srv *mockserver.Server, prefix string) {
	reqs := srv.RequestsTo(prefix)
	fmt.Fprintf(w, "the mock server saw %d request(s):\n", len(reqs))
	for _, r := range reqs {
		cred := r.Credential
		if cred == "" {
			cred = "no credentials"
		}
		fmt.Fprintf(w, "  %s %s -> %d  (%s)\n", r.Method, r.Path, r.Status, cred)
	}
}
