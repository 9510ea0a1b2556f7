package reauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scopeParam is a scope auth-param of n scopes over resources
// repositories; action gives the actions of the i-th.
func scopeParam(n, resources int, action func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "r:%d:%s", i%resources, action(i))
	}
	return b.String()
}

func pullPush(int) string    { return "pull,push" }
func newAction(i int) string { return fmt.Sprintf("a%d", i) }

// TestRegistryOneHostileChallengeCannotExceedTheHeldBound: a challenge
// naming thousands of repositories must not make the credentials request
// and hold a token for each (before: 5,000 held tokens against the bound of
// maxHeldTokens). It is refused with a final error naming the bound.
func TestRegistryOneHostileChallengeCannotExceedTheHeldBound(t *testing.T) {
	realm := newMockRegistry(t) // its realm; the registry is hostile
	var scope strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&scope, "r:%d:p ", i) // 5,000 resources
	}
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope=%q`, realm.realmURL(), testService, scope.String())
	require.Less(t, len(challenge), MaxChallengeBytes, "the challenge itself is within the parser's bounds")
	reg := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.WriteHeader(http.StatusUnauthorized)
	})
	creds := Registry("", "").(*registryCredentials)
	_, err := get(t, clientFor(&Transport{Credentials: creds, Origins: []string{reg.URL}}), reg.URL+"/v2/r1/manifests/latest")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("more than %d", maxScopes))
	assert.True(t, errors.Is(err, ErrFinal), "the registry will send the same challenge again")
	creds.mu.Lock()
	held := len(creds.held)
	creds.mu.Unlock()
	assert.LessOrEqual(t, held, maxHeldTokens)
	assert.Zero(t, len(realm.seen()), "no token is asked for")

	t.Run("challenges at the bound, one after another, stay within maxHeldTokens", func(t *testing.T) {
		creds := Registry("", "").(*registryCredentials)
		var batch int
		reg := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				io.WriteString(w, "ok")
				return
			}
			var scopes []string
			for i := range maxScopes {
				scopes = append(scopes, fmt.Sprintf("repository:b%d/r%d:pull", batch, i))
			}
			batch++
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope=%q`, realm.realmURL(), testService, strings.Join(scopes, " ")))
			w.WriteHeader(http.StatusUnauthorized)
		})
		c := clientFor(&Transport{Credentials: creds, Origins: []string{reg.URL}})
		for range 2 * maxHeldTokens / maxScopes {
			_, err := get(t, c, reg.URL+"/v2/x/manifests/latest")
			require.NoError(t, err)
			creds.mu.Lock()
			held := len(creds.held)
			creds.mu.Unlock()
			require.LessOrEqual(t, held, maxHeldTokens)
		}
	})
}

// allocatedBytes returns the fewest bytes f allocated in three runs.
func allocatedBytes(f func()) uint64 {
	least := ^uint64(0)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// TestParseScopesIsLinear: the memory parseScopes allocates grows at most
// in proportion to its input, for a long valid scope (64 repositories named
// again and again) and for a hostile one (a new action each time). Before,
// merging the actions of a repository named again copied all its actions so
// far, and finding the repository scanned all those before it: 8 times the
// input cost about 64 times the work. (BenchmarkParseScopes shows the time.)
func TestParseScopesIsLinear(t *testing.T) {
	for name, action := range map[string]func(int) string{"valid": pullPush, "hostile": newAction} {
		small, large := scopeParam(500, maxScopes, action), scopeParam(4000, maxScopes, action)
		bytesSmall := allocatedBytes(func() { parseScopes(small) })
		bytesLarge := allocatedBytes(func() { parseScopes(large) })
		ratio := float64(bytesLarge) / float64(max(bytesSmall, 1))
		assert.Less(t, ratio, 16.0, "%s: %.0f times the bytes for 8 times the input (%d, %d bytes)", name, ratio, bytesSmall, bytesLarge)
	}

	scopes, err := parseScopes(scopeParam(4000, maxScopes, pullPush))
	require.NoError(t, err)
	assert.Len(t, scopes, maxScopes)
	assert.Equal(t, []string{"pull", "push"}, scopes[0].actions)
	_, err = parseScopes(scopeParam(maxScopes+1, maxScopes+1, pullPush))
	assert.ErrorContains(t, err, fmt.Sprintf("more than %d resources", maxScopes), "one repository too many")
	_, err = parseScopes(scopeParam(maxActions+1, 1, newAction))
	assert.ErrorContains(t, err, fmt.Sprintf("more than %d actions", maxActions), "one action too many")
}

func BenchmarkParseScopes(b *testing.B) {
	for name, action := range map[string]func(int) string{"valid": pullPush, "hostile": newAction} {
		for _, n := range []int{500, 4000} {
			param := scopeParam(n, maxScopes, action)
			b.Run(fmt.Sprintf("%s/%dB", name, len(param)), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					parseScopes(param)
				}
			})
		}
	}
}
