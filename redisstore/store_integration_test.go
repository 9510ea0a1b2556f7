//go:build integration

package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/redisstore"
	"github.com/reauth/reauth/storetest"
)

// These tests need a real Redis: scripts/redis.sh test starts one on
// 127.0.0.1 and sets REAUTH_REDIS_ADDR (and REAUTH_REDIS_SERVER, the binary
// the restart test runs).

func redisAddr(t *testing.T) string {
	addr := os.Getenv("REAUTH_REDIS_ADDR")
	if addr == "" {
		t.Fatal("REAUTH_REDIS_ADDR is not set: run these tests with scripts/redis.sh test")
	}
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host, "the tests only dial loopback")
	return addr
}

func newClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolSize: 128,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

var prefixes atomic.Int64

// uniquePrefix keeps each test's keys apart and deletes them afterwards.
func uniquePrefix(t *testing.T, c *redis.Client) string {
	p := fmt.Sprintf("reauth-test:%d:%d:", os.Getpid(), prefixes.Add(1))
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, p+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

func TestRedisStoreConformance(t *testing.T) {
	addr := redisAddr(t)
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		c := newClient(t, addr)
		prefix := uniquePrefix(t, c)
		ctx := context.Background()
		return storetest.Backend{
			Open: func(enc *reauth.EntryEncryption) reauth.TokenStore {
				s := redisstore.New(c, prefix)
				s.Encryption = enc
				return s
			},
			Raw: func(key string) []byte {
				var all []byte
				keys, err := c.Keys(ctx, prefix+key+"*").Result()
				require.NoError(t, err)
				for _, k := range keys {
					switch c.Type(ctx, k).Val() {
					case "hash":
						for f, v := range c.HGetAll(ctx, k).Val() {
							all = append(append(all, f...), v...)
						}
					case "string":
						all = append(all, c.Get(ctx, k).Val()...)
					}
				}
				return all
			},
			PutRaw: func(key string, data []byte) {
				k := prefix + key + ":tok"
				require.NoError(t, c.Del(ctx, k).Err())
				require.NoError(t, c.HSet(ctx, k, "d", data).Err())
			},
			Wait: time.Sleep, // Redis has only its own clock: leases end in real time
		}
	})
}

func TestRedisStoreForeignValueIsInvalid(t *testing.T) {
	c := newClient(t, redisAddr(t))
	prefix := uniquePrefix(t, c)
	ctx := context.Background()
	s := redisstore.New(c, prefix)
	key := reauth.StoreKey(reauth.TokenIdentity{ClientID: "foreign"})
	// Something else wrote a plain string where the entry hash goes.
	require.NoError(t, c.Set(ctx, prefix+key+":tok", "hello", 0).Err())
	_, err := s.Load(ctx, key)
	assert.ErrorIs(t, err, reauth.ErrStoreEntryInvalid)
	_, ok, err := s.CompareAndSwap(ctx, key, 0, reauth.StoredToken{AccessToken: "at"})
	require.NoError(t, err)
	assert.True(t, ok, "a foreign value is replaced from version 0")
}

func TestRedisStoreEntriesExpire(t *testing.T) {
	c := newClient(t, redisAddr(t))
	prefix := uniquePrefix(t, c)
	ctx := context.Background()
	s := redisstore.New(c, prefix)
	key := reauth.StoreKey(reauth.TokenIdentity{ClientID: "ttl"})
	_, _, err := s.CompareAndSwap(ctx, key, 0, reauth.StoredToken{AccessToken: "at", Expiry: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	ttl := c.PTTL(ctx, prefix+key+":tok").Val()
	assert.Greater(t, ttl, time.Hour, "an hour's grace after the token expires")
	assert.LessOrEqual(t, ttl, time.Hour+time.Minute)
	_, _, err = s.CompareAndSwap(ctx, key, 1, reauth.StoredToken{}) // loses; TTL unchanged
	require.NoError(t, err)
	require.NoError(t, s.SetCoolDown(ctx, key, time.Now().Add(time.Minute)))
	assert.Greater(t, c.PTTL(ctx, prefix+key+":cool").Val(), time.Duration(0), "the cool-down key expires with the cool-down")
	_, err = s.AcquireLease(ctx, key, "h", time.Minute)
	require.NoError(t, err)
	assert.Greater(t, c.PTTL(ctx, prefix+key+":lease").Val(), time.Duration(0), "the lease key expires with the lease")
}

func TestRedisStoreFleetFetchesOncePerRound(t *testing.T) {
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
			r := storetest.RunFleet(t, storetest.FleetConfig{
				Program: "./internal/redisfleet", Processes: n, Goroutines: 64, Rounds: 6,
				Env: []string{"REAUTH_REDIS_ADDR=" + addr, "REAUTH_FLEET_PREFIX=" + uniquePrefix(t, c)},
			})
			t.Logf("Redis fleet: %d processes × 64 goroutines, 6 rounds: fetches %v, %v a round", n, r.Fetches, r.PerRound)
		})
	}
}

// TestRedisStoreKilledAndRestarted kills a Redis of its own by pid while
// goroutines use the store: every call returns (an error while Redis is
// down, no hang), the store works again once Redis is back, and versions
// keep growing although the restarted Redis lost every entry.
func TestRedisStoreKilledAndRestarted(t *testing.T) {
	srv := startOwnRedis(t)
	addr := srv.addr()
	c := newClient(t, addr)
	s := redisstore.New(c, "reauth-kill:")
	key := reauth.StoreKey(reauth.TokenIdentity{ClientID: "kill"})
	guard, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor := func(what string, ok func() bool) {
		for !ok() {
			require.NoError(t, guard.Err(), "waiting for %s", what)
			time.Sleep(20 * time.Millisecond)
		}
	}
	var before uint64
	waitFor("Redis to answer", func() bool {
		v, _, err := s.CompareAndSwap(guard, key, 0, reauth.StoredToken{AccessToken: "at-before"})
		before = v
		return err == nil
	})

	var phase atomic.Int32 // 0 up, 1 down, 2 restarted
	var okUp, errDown, okAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := reauth.NewLeaseHolder()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				ctx, cancel := context.WithTimeout(guard, 5*time.Second) // hang guard per call
				_, err := s.Load(ctx, key)
				if err == nil || err == reauth.ErrStoreMiss {
					_, err = s.AcquireLease(ctx, key, h, time.Second)
				}
				assert.NoError(t, guard.Err(), "a store call hung")
				cancel()
				switch {
				case p == 0 && err == nil:
					okUp.Add(1)
				case p == 1 && err != nil:
					errDown.Add(1)
				case p == 2 && err == nil:
					okAfter.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	waitFor("calls while Redis is up", func() bool { return okUp.Load() > 50 })
	require.NoError(t, srv.kill()) // by pid
	phase.Store(1)
	waitFor("errors while Redis is down", func() bool { return errDown.Load() > 20 })
	srv.start()
	phase.Store(2)
	waitFor("calls after the restart", func() bool { return okAfter.Load() > 50 })
	close(stop)
	wg.Wait()
	t.Logf("calls that succeeded before the kill %d, failed while down %d, succeeded after the restart %d",
		okUp.Load(), errDown.Load(), okAfter.Load())

	// The restarted Redis has no entries (no persistence): versions still grow.
	_, err := s.Load(guard, key)
	require.ErrorIs(t, err, reauth.ErrStoreMiss)
	after, ok, err := s.CompareAndSwap(guard, key, 0, reauth.StoredToken{AccessToken: "at-after"})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Greater(t, after, before, "a version after the flush is above every version before it")
}

// ownRedis is a redis-server of a test's own on 127.0.0.1, which the test
// may kill by pid and start again on the same port (losing every entry).
type ownRedis struct {
	t        *testing.T
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

// startOwnRedis starts one ($REAUTH_REDIS_SERVER, else redis-server) with
// no persistence, stopped by pid when the test ends.
func startOwnRedis(t *testing.T) *ownRedis {
	bin := os.Getenv("REAUTH_REDIS_SERVER")
	if bin == "" {
		bin = "redis-server"
	}
	r := &ownRedis{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	r.start()
	t.Cleanup(func() { _ = r.kill() })
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start starts the server on its port.
func (r *ownRedis) start() {
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	require.NoError(r.t, r.cmd.Start(), "starting %s", r.bin)
}

// kill kills the server by pid and waits for it to exit.
func (r *ownRedis) kill() error {
	err := r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	return err
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
