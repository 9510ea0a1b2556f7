// Command filefleet is one process of the FileStore fleet test
// (storetest.RunFleet): it shares the FileStore in $REAUTH_FLEET_DIR.
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
		err = storetest.FleetMember(store)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "filefleet:", err)
		os.Exit(1)
	}
}
