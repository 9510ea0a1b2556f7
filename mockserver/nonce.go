package mockserver

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// maxNonces bounds the nonce store; past it the oldest nonces are forgotten
// (a forgotten nonce answered correctly is stale, as after a restart).
const maxNonces = 50_000

// ncWindow is how far below the highest nonce count a not-yet-seen count is
// still accepted when nonce counts need not strictly increase.
const ncWindow = 64

// nonceState is what the server remembers of a nonce it issued.
type nonceState struct {
	realm  string
	opaque string
	issued time.Time
	uses   int    // requests it has authenticated
	maxNC  uint32 // highest nonce count accepted
	seen   uint64 // bit i: nonce count maxNC-i was accepted
}

type nonceStore struct {
	mu    sync.Mutex
	m     map[string]*nonceState
	order []string // issue order, for eviction
}

// nonceVerdict is what the store says of a nonce and nonce count.
type nonceVerdict int

const (
	nonceFresh  nonceVerdict = iota
	nonceStale               // expired, used up, or unknown: stale=true (RFC 7616 §3.3)
	nonceReplay              // the nonce count was used before
)

// nonceRules are the limits a nonce is checked against.
type nonceRules struct {
	lifetime time.Duration // 0: none
	maxUses  int           // 0: none
	strict   bool          // nc must exceed every nc seen
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueWithOpaque returns a new nonce for realm and the opaque that goes
// with it: opaque itself, or a new one when opaque is "". A nextnonce keeps
// the opaque of the nonce it follows, since the client keeps sending that.
func (st *nonceStore) issueWithOpaque(realm string, now time.Time, opaque string) (string, string) {
	nonce := randomToken(24)
	if opaque == "" {
		opaque = randomToken(18)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for len(st.order) >= maxNonces {
		delete(st.m, st.order[0])
		st.order = st.order[1:]
	}
	st.m[nonce] = &nonceState{realm: realm, opaque: opaque, issued: now}
	st.order = append(st.order, nonce)
	return nonce, opaque
}

// lookup returns a copy of the nonce's state.
func (st *nonceStore) lookup(nonce string) (nonceState, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n, ok := st.m[nonce]
	if !ok {
		return nonceState{}, false
	}
	return *n, true
}

// use checks nonce and nonce count nc of a request whose response was
// correct, and counts the use when the nonce is fresh.
func (st *nonceStore) use(nonce, realm string, nc uint32, now time.Time, rules nonceRules) nonceVerdict {
	st.mu.Lock()
	defer st.mu.Unlock()
	n, ok := st.m[nonce]
	switch {
	case !ok || n.realm != realm:
		return nonceStale
	case rules.lifetime > 0 && now.Sub(n.issued) > rules.lifetime:
		return nonceStale
	case rules.maxUses > 0 && n.uses >= rules.maxUses:
		return nonceStale
	}
	switch {
	case nc > n.maxNC:
		shift := nc - n.maxNC
		if shift >= 64 {
			n.seen = 0
		} else {
			n.seen <<= shift
		}
		n.seen |= 1
		n.maxNC = nc
	case rules.strict || n.maxNC-nc >= ncWindow:
		return nonceReplay
	default:
		bit := uint64(1) << (n.maxNC - nc)
		if n.seen&bit != 0 {
			return nonceReplay
		}
		n.seen |= bit
	}
	n.uses++
	return nonceFresh
}
