// Command redisoauth2fleet is one process of the Redis OAuth2 fleet tests
// (storetest.RunOAuth2Fleet): ClientCredentials through a Transport, with
// OAuth2Options.Store the Store in the Redis at $REAUTH_REDIS_ADDR under
// $REAUTH_FLEET_PREFIX.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reauth/reauth/redisstore"
	"github.com/reauth/reauth/storetest"
)

func main() {
	client := redis.NewClient(&redis.Options{
		Addr: os.Getenv("REAUTH_REDIS_ADDR"), DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 64,
		MaxRetries: -1, // a Redis that is down costs one attempt, then the process's own cache
	})
	defer client.Close()
	if err := storetest.OAuth2FleetMember(redisstore.New(client, os.Getenv("REAUTH_FLEET_PREFIX"))); err != nil {
		fmt.Fprintln(os.Stderr, "redisoauth2fleet:", err)
		os.Exit(1)
	}
}
