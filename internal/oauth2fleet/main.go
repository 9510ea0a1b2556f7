// Command oauth2fleet is one process of the OAuth2 fleet test
// (storetest.RunOAuth2Fleet): ClientCredentials through a Transport, with
// OAuth2Options.Store the FileStore in $REAUTH_FLEET_DIR.
package main

import (
	"fmt"
	"os"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/storetest"
)

func main() {
	store, err := reauth.NewFileStore(os.Getenv("REAUTH_FLEET_DIR"))
	if err == nil {
		err = storetest.OAuth2FleetMember(store)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oauth2fleet:", err)
		os.Exit(1)
	}
}
