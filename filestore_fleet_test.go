//go:build unix

package reauth_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth/storetest"
)

// fleetSizes are the process counts of the fleet tests: 2 and 8, or the
// list in REAUTH_FLEET_SIZES (e.g. "2,8,32" for the figures).
func fleetSizes(t *testing.T) []int {
	sizes := []int{2, 8}
	if s := os.Getenv("REAUTH_FLEET_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			require.NoError(t, err, "REAUTH_FLEET_SIZES")
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// TestFileStoreFleetFetchesOncePerRound runs N processes × 64 goroutines on
// one FileStore: after each revocation and each expiry exactly one token
// fetch in the whole fleet.
func TestFileStoreFleetFetchesOncePerRound(t *testing.T) {
	for _, n := range fleetSizes(t) {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tokens")
			r := storetest.RunFleet(t, storetest.FleetConfig{
				Program: "./internal/filefleet", Processes: n, Goroutines: 64, Rounds: 6,
				Env: []string{"REAUTH_FLEET_DIR=" + dir},
			})
			t.Logf("FileStore fleet: %d processes × 64 goroutines, %d rounds: fetches %v, %v a round", n, 6, r.Fetches, r.PerRound)
		})
	}
}

// TestFileStoreOAuth2FleetFetchesOncePerRound runs N processes × 64
// goroutines THROUGH reauth's Transport and ClientCredentials with a shared
// FileStore against the mock's token endpoint: exactly one token fetch in
// the whole fleet at the cold start, after each revocation and at each
// expiry, and no failed request.
func TestFileStoreOAuth2FleetFetchesOncePerRound(t *testing.T) {
	for _, n := range fleetSizes(t) {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tokens")
			r := storetest.RunOAuth2Fleet(t, storetest.OAuth2FleetConfig{
				Program: "./internal/oauth2fleet", Processes: n, Goroutines: 64, Requests: 3, Rounds: 3,
				Env: []string{"REAUTH_FLEET_DIR=" + dir},
			})
			t.Logf("FileStore OAuth2 fleet: %d processes × 64 goroutines: fetches per round %v, %d requests, %d failed", n, r.Fetches, r.Requests, r.Failed)
		})
	}
}
