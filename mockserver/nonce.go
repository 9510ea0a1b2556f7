package mockserver

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"sort"
	"sync"
	"time"
)

// maxNonces bounds the nonce store; past it the oldest nonces are forgotten
// (a forgotten nonce answered correctly is stale, as after a restart).
const maxNonces = 50_000

// maxNCGaps bounds, per nonce, the runs of nonce counts below the highest
// accepted that have not been seen yet. Counts are tracked exactly, however
// far behind they arrive: a count is refused as a replay only when it was
// seen. Past the bound the lowest run is given up, and a count in it is
// refused as too old to check. A run is added only by an accepted request,
// so memory follows the work clients did.
const maxNCGaps = 1024

// nonceState is what the server remembers of a nonce it issued.
type nonceState struct {
	realm  string
	opaque string
	issued time.Time
	uses   int     // requests it has authenticated
	maxNC  uint32  // highest nonce count accepted
	gaps   []ncRun // counts below maxNC not seen yet, ascending, disjoint
	behind uint32  // counts up to this one not in gaps are no longer known
}

// ncRun is the nonce counts lo to hi, both included.
type ncRun struct{ lo, hi uint32 }

type nonceStore struct {
	mu      sync.Mutex
	m       map[string]*nonceState
	order   []string // issue order, for eviction
	replays int      // requests refused for a nonce count seen before
}

// nonceVerdict is what the store says of a nonce and nonce count.
type nonceVerdict int

const (
	nonceFresh      nonceVerdict = iota
	nonceStale                   // expired, used up, or unknown: stale=true (RFC 7616 §3.3)
	nonceReplay                  // the nonce count was used before
	nonceOutOfOrder              // not seen, but below one seen: refused when counts must increase
	nonceTooOld                  // below every count still tracked: whether it was seen is not known
)

// DigestReplays returns how many Digest requests (to /digest/ or the proxy)
// were refused because their nonce count had been accepted before with their
// nonce: replays, which a correct client never sends. Requests that arrive
// out of order are not counted.
func (s *Server) DigestReplays() int {
	s.nonces.mu.Lock()
	defer s.nonces.mu.Unlock()
	return s.nonces.replays
}

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
	v := n.take(nc, rules.strict)
	switch v {
	case nonceFresh:
		n.uses++
	case nonceReplay:
		st.replays++
	}
	return v
}

// take records nonce count nc as seen, or says why it is refused: seen
// before, or below the highest when strict (RFC 7616 §3.4 asks only that a
// count not repeat; Apache's AuthDigestNcCheck wants each count in order).
func (n *nonceState) take(nc uint32, strict bool) nonceVerdict {
	if nc > n.maxNC {
		if nc > n.maxNC+1 {
			n.gaps = append(n.gaps, ncRun{n.maxNC + 1, nc - 1})
			n.trimGaps()
		}
		n.maxNC = nc
		return nonceFresh
	}
	i := sort.Search(len(n.gaps), func(i int) bool { return n.gaps[i].hi >= nc })
	switch {
	case i == len(n.gaps) || n.gaps[i].lo > nc:
		if nc <= n.behind {
			return nonceTooOld
		}
		return nonceReplay
	case strict:
		return nonceOutOfOrder
	}
	switch g := n.gaps[i]; {
	case g.lo == g.hi:
		n.gaps = slices.Delete(n.gaps, i, i+1)
	case nc == g.lo:
		n.gaps[i].lo++
	case nc == g.hi:
		n.gaps[i].hi--
	default:
		n.gaps[i].hi = nc - 1
		n.gaps = slices.Insert(n.gaps, i+1, ncRun{nc + 1, g.hi})
		n.trimGaps()
	}
	return nonceFresh
}

// trimGaps gives up the lowest runs past maxNCGaps.
func (n *nonceState) trimGaps() {
	if over := len(n.gaps) - maxNCGaps; over > 0 {
		n.behind = n.gaps[over-1].hi
		n.gaps = slices.Delete(n.gaps, 0, over)
	}
}
