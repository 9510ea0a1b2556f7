// Command redisfleet is one process of the Redis fleet test
// (storetest.RunFleet): it shares the Store in the Redis at
// $REAUTH_REDIS_ADDR under $REAUTH_FLEET_PREFIX.
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
		Addr: os.Getenv("REAUTH_REDIS_ADDR"), DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, PoolSize: 64,
	})
	defer client.Close()
	if err := storetest.FleetMember(redisstore.New(client, os.Getenv("REAUTH_FLEET_PREFIX"))); err != nil {
		fmt.Fprintln(os.Stderr, "redisfleet:", err)
		os.Exit(1)
	}
}
