package reauth_test

import (
	"testing"

	"github.com/reauth/reauth/mockserver"
)

// startMock starts the bundled mock server on DefaultConfig, changed by
// edit, and closes it when the test ends.
func startMock(t *testing.T, edit ...func(*mockserver.Config)) *mockserver.Server {
	t.Helper()
	cfg := mockserver.DefaultConfig()
	for _, e := range edit {
		e(&cfg)
	}
	srv := mockserver.New(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// statuses returns the status of each logged request.
func statuses(rs []mockserver.Request) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}
