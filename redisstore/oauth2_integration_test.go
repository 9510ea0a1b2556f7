//go:build integration

package redisstore_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth/storetest"
)

// TestRedisOAuth2FleetFetchesOncePerRound runs N = 2, 8, 32 processes × 64
// goroutines THROUGH reauth's Transport and ClientCredentials, sharing a
// Redis store, against the mock's token endpoint: exactly one token fetch in
// the whole fleet at the cold start, after each revocation and at each
// expiry, and no failed request.
func TestRedisOAuth2FleetFetchesOncePerRound(t *testing.T) {
	addr := redisAddr(t)
	sizes := []int{2, 8, 32}
	if s := os.Getenv("REAUTH_FLEET_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c := newClient(t, addr)
			r := storetest.RunOAuth2Fleet(t, storetest.OAuth2FleetConfig{
				Program: "./internal/redisoauth2fleet", Processes: n, Goroutines: 64, Requests: 3, Rounds: 3,
				Env: []string{"REAUTH_REDIS_ADDR=" + addr, "REAUTH_FLEET_PREFIX=" + uniquePrefix(t, c)},
			})
			t.Logf("Redis OAuth2 fleet: %d processes × 64 goroutines: fetches per round %v, %d requests, %d failed", n, r.Fetches, r.Requests, r.Failed)
		})
	}
}

// TestRedisOAuth2FleetSurvivesRedisKilled runs 20,000 requests across 8
// processes through the Transport with a Redis store, kills that Redis by
// pid in the middle of the run (and revokes the token while it is down, so
// that the processes need a new one without the store), then restarts it:
// no request the origin would have served fails, and the token fetches are
// counted.
func TestRedisOAuth2FleetSurvivesRedisKilled(t *testing.T) {
	srv := startOwnRedis(t)
	addr := srv.addr()
	c := newClient(t, addr)
	guard := time.Now().Add(time.Minute)
	for c.Ping(t.Context()).Err() != nil {
		require.True(t, time.Now().Before(guard), "Redis did not start")
		time.Sleep(20 * time.Millisecond)
	}

	const processes, goroutines, requests = 8, 50, 50 // 20,000 requests
	f := storetest.StartOAuth2Fleet(t, storetest.BuildProgram(t, "./internal/redisoauth2fleet"), storetest.OAuth2FleetConfig{
		Processes: processes, Goroutines: goroutines, Requests: requests,
		Env: []string{"REAUTH_REDIS_ADDR=" + addr, "REAUTH_FLEET_PREFIX=reauth-oauth2-kill:"},
	})
	served := func() int { return len(f.Mock.RequestsTo("/oauth2/resource")) }
	waitServed := func(n int) {
		for served() < n {
			require.True(t, time.Now().Before(guard), "waiting for %d requests", n)
			time.Sleep(5 * time.Millisecond)
		}
	}
	f.Start(t)
	waitServed(4000)
	require.NoError(t, srv.kill()) // by pid
	killedAt := served()
	grantsAtKill := f.Mock.TokenGrants()
	f.Mock.RevokeAll()
	waitServed(killedAt + 4000)
	grantsDown := f.Mock.TokenGrants() - grantsAtKill
	srv.start()
	restartedAt := served()
	fetches, failed := f.Finish(t)
	t.Logf("Redis killed after %d requests, restarted after %d; 20,000 requests: %d failed, %d token fetches (%d while Redis was down, after the revocation)",
		killedAt, restartedAt, failed, fetches, grantsDown)
	assert.Zero(t, failed, "requests the origin would have served")
	assert.LessOrEqual(t, grantsDown, processes, "while Redis is down each process fetches at most once for the revocation")
}
