// Package redisstore is a [reauth.TokenStore] in Redis, for a fleet of
// processes on many machines. It is a module of its own so that reauth's
// core module does not depend on a Redis client.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reauth/reauth"
)

// Store is a [reauth.TokenStore] in Redis. For a key k it uses, under the
// key prefix:
//
//	<prefix>k:tok    a hash: v (the version), d (the entry, see [reauth.EncodeStoredToken])
//	<prefix>k:lease  the lease holder, expiring with the lease (SET NX PX)
//	<prefix>k:cool   the cool-down's end in Unix milliseconds, expiring then
//
// Compare-and-swap and lease changes are Lua scripts (EVALSHA, EVAL when
// the script is not cached), so they are atomic in Redis. Entries expire an
// hour after their access token does, or 30 days after the last write when
// they hold a refresh token, so tokens that nobody asks for do not
// accumulate. Each command and script touches a single key, so the Store
// works on a Redis Cluster as it is.
//
// Set the fields before the first use; a Store is safe for concurrent use.
type Store struct {
	// Encryption, if set, seals entries with AES-GCM; entries written
	// without it (or with another key) then read as [reauth.ErrStoreWrongKey].
	Encryption *reauth.EntryEncryption

	client redis.UniversalClient
	prefix string
}

// New returns a Store that keeps its keys in client under keyPrefix (e.g.
// "myapp:reauth:"). The client's timeouts bound each call, as does its
// context.
func New(client redis.UniversalClient, keyPrefix string) *Store {
	return &Store{client: client, prefix: keyPrefix}
}

const (
	// refreshTokenTTL keeps an entry with a refresh token this long after its
	// last write: refresh tokens outlive access tokens.
	refreshTokenTTL = 30 * 24 * time.Hour
	// unknownExpiryTTL keeps an entry whose expiry is unknown (or that was
	// invalidated) this long.
	unknownExpiryTTL = 24 * time.Hour
	// expiredGrace keeps an entry this long after its access token expired,
	// so the version keeps growing across a late fetch.
	expiredGrace = time.Hour
	maxKeyLen    = 256
)

func entryTTL(t reauth.StoredToken, now time.Time) time.Duration {
	switch {
	case t.RefreshToken != "":
		return refreshTokenTTL
	case t.Expiry.IsZero():
		return unknownExpiryTTL
	default:
		return max(t.Expiry.Sub(now), 0) + expiredGrace
	}
}

func (s *Store) names(key string) (tok, lease, cool string, err error) {
	if key == "" || len(key) > maxKeyLen {
		return "", "", "", fmt.Errorf("reauth: redisstore: the key must be 1 to %d bytes, got %d; use reauth.StoreKey", maxKeyLen, len(key))
	}
	k := s.prefix + key
	return k + ":tok", k + ":lease", k + ":cool", nil
}

func storeErr(op string, err error) error {
	return fmt.Errorf("reauth: redisstore: %s: %w", op, err)
}

// parseVersion reads the v field; anything but a decimal number is no
// version (0), as the CAS script reads it.
func parseVersion(v any) uint64 {
	s, _ := v.(string)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Load implements [reauth.TokenStore].
func (s *Store) Load(ctx context.Context, key string) (reauth.StoredToken, error) {
	tok, _, _, err := s.names(key)
	if err != nil {
		return reauth.StoredToken{}, err
	}
	vals, err := s.client.HMGet(ctx, tok, "v", "d").Result()
	if err != nil {
		if isWrongType(err) {
			return reauth.StoredToken{}, fmt.Errorf("%w: the Redis key is not a hash", reauth.ErrStoreEntryInvalid)
		}
		return reauth.StoredToken{}, storeErr("load", err)
	}
	version := parseVersion(vals[0])
	data, ok := vals[1].(string)
	if !ok {
		if version != 0 {
			return reauth.StoredToken{Version: version}, fmt.Errorf("%w: the entry has no data", reauth.ErrStoreEntryInvalid)
		}
		return reauth.StoredToken{}, reauth.ErrStoreMiss
	}
	t, err := reauth.DecodeStoredToken(key, []byte(data), s.Encryption)
	t.Version = version
	return t, err
}

func isWrongType(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && len(rerr.Error()) >= 9 && rerr.Error()[:9] == "WRONGTYPE"
}

// casScript: KEYS[1] the entry hash; ARGV old version, new version, data,
// ttl in ms. A key that is not a hash, or has no decimal v, is version 0.
var casScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
local cur = '0'
if t == 'hash' then
  cur = redis.call('HGET', KEYS[1], 'v') or '0'
  if not string.match(cur, '^%d+$') then cur = '0' end
end
if cur ~= ARGV[1] then return {0, cur} end
if t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, ARGV[2]}
`)

// CompareAndSwap implements [reauth.TokenStore].
func (s *Store) CompareAndSwap(ctx context.Context, key string, old uint64, next reauth.StoredToken) (uint64, bool, error) {
	tok, _, _, err := s.names(key)
	if err != nil {
		return 0, false, err
	}
	now := time.Now()
	version := reauth.NextStoredVersion(old, now)
	data, err := reauth.EncodeStoredToken(key, version, next, s.Encryption)
	if err != nil {
		return 0, false, err
	}
	ttl := max(entryTTL(next, now).Milliseconds(), 1)
	res, err := casScript.Run(ctx, s.client, []string{tok},
		strconv.FormatUint(old, 10), strconv.FormatUint(version, 10), data, ttl).Slice()
	if err != nil {
		return 0, false, storeErr("compare-and-swap", err)
	}
	if len(res) != 2 {
		return 0, false, storeErr("compare-and-swap", fmt.Errorf("unexpected script reply of %d values", len(res)))
	}
	swapped, _ := res[0].(int64)
	return parseVersion(res[1]), swapped == 1, nil
}

// extendScript extends holder's lease: KEYS[1] the lease; ARGV holder, ttl ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes holder's lease: KEYS[1] the lease; ARGV holder.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// AcquireLease implements [reauth.TokenStore].
func (s *Store) AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	_, lease, _, err := s.names(key)
	if err != nil {
		return false, err
	}
	if holder == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("reauth: redisstore: a lease needs a holder (reauth.NewLeaseHolder) and a ttl of at least 1ms, got %v", ttl)
	}
	ok, err := s.client.SetNX(ctx, lease, holder, ttl).Result()
	if err != nil {
		return false, storeErr("acquire lease", err)
	}
	if ok {
		return true, nil
	}
	n, err := extendScript.Run(ctx, s.client, []string{lease}, holder, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, storeErr("extend lease", err)
	}
	return n == 1, nil
}

// ReleaseLease implements [reauth.TokenStore].
func (s *Store) ReleaseLease(ctx context.Context, key, holder string) error {
	_, lease, _, err := s.names(key)
	if err != nil {
		return err
	}
	if err := releaseScript.Run(ctx, s.client, []string{lease}, holder).Err(); err != nil {
		return storeErr("release lease", err)
	}
	return nil
}

// coolScript keeps the later cool-down: KEYS[1] the cool-down; ARGV until
// in Unix ms. Milliseconds stay exact in Lua's numbers.
var coolScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
  return 1
end
return 0
`)

// CoolDown implements [reauth.TokenStore]. Times are kept to the
// millisecond.
func (s *Store) CoolDown(ctx context.Context, key string) (time.Time, error) {
	_, _, cool, err := s.names(key)
	if err != nil {
		return time.Time{}, err
	}
	v, err := s.client.Get(ctx, cool).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, storeErr("cool-down", err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, nil // unreadable: no cool-down
	}
	return time.UnixMilli(ms), nil
}

// SetCoolDown implements [reauth.TokenStore]. A time in the past stores
// nothing.
func (s *Store) SetCoolDown(ctx context.Context, key string, until time.Time) error {
	_, _, cool, err := s.names(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !until.After(time.Now()) {
		return nil
	}
	if err := coolScript.Run(ctx, s.client, []string{cool}, until.UnixMilli()).Err(); err != nil {
		return storeErr("set cool-down", err)
	}
	return nil
}
