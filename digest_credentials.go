package reauth

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// DigestOptions configure the credentials of [DigestWithOptions].
type DigestOptions struct {
	// DisallowMD5 refuses challenges whose algorithm is MD5 or MD5-sess
	// (RFC 7616 §3.3 keeps MD5 only for backward compatibility).
	DisallowMD5 bool
}

// Digest returns credentials for the Digest scheme (RFC 7616). When a server
// offers several Digest challenges, the strongest it supports is answered
// (SHA-512-256 > SHA-256 > MD5). After the first challenge, every request to
// the protection space (the origin, or the URIs of the challenge's domain
// parameter within the Transport's Origins) carries an answer up front, with
// the same nonce and the next nonce count, so the steady state is one request
// per call. stale=true, nextnonce and rspauth (RFC 7615) are honoured.
//
// Nonce counts are kept per nonce, whichever protection space, leg (origin or
// proxy) or challenge a nonce comes with: one Credentials value never sends a
// (nonce, nc) pair twice, which a server checking counts would refuse as a
// replay (RFC 7616 §3.4).
func Digest(username, password string) Credentials {
	return DigestWithOptions(username, password, DigestOptions{})
}

// DigestWithOptions is [Digest] with options.
func DigestWithOptions(username, password string, opts DigestOptions) Credentials {
	return &digestCredentials{username: username, password: password, opts: opts,
		counts: nonceCounts{seed: maphash.MakeSeed()}}
}

type digestCredentials struct {
	username, password string
	opts               DigestOptions

	mu     sync.Mutex
	spaces []*digestSpace // few: one per origin and realm that challenged
	counts nonceCounts
}

// digestSpace is one protection space that has challenged, with the nonce in
// use. Its counts are in digestCredentials.counts.
type digestSpace struct {
	origin origin
	proxy  bool
	realm  string
	domain []domainURI // nil: the whole origin (RFC 7616 §3.3)
	dc     digestChallenge
	// userHA1 is H(username ":" realm ":" password), the same for every
	// answer in the space: computed once, when the space is made.
	userHA1 hexDigest
}

// domainURI is one URI of a domain parameter: requests whose path starts
// with path on origin belong to the protection space.
type domainURI struct {
	origin origin
	path   string
}

// covers reports how closely the space covers a request: 0 not at all, else
// 1 plus the length of the longest domain URI that is a prefix of the path,
// so that the most specific of several spaces on one origin wins.
func (s *digestSpace) covers(o origin, path string, proxy bool) int {
	if s.proxy != proxy {
		return 0
	}
	if s.domain == nil {
		if s.origin == o {
			return 1
		}
		return 0
	}
	best := 0
	for _, d := range s.domain {
		if d.origin == o && strings.HasPrefix(path, d.path) {
			best = max(best, 1+len(d.path))
		}
	}
	return best
}

// digestState is what Digest keeps on an AuthRequest (its State): the
// answer sent and the space it belongs to, and whether Refused has chosen
// that space for the next attempt. It holds HA1.
type digestState struct {
	answer digestAnswer
	space  *digestSpace
	dc     *digestChallenge // the challenge Refused chose for the next attempt, nil once used
}

// Authorize answers when Refused has chosen a challenge, and preemptively
// when the request falls in a protection space that has challenged before:
// same nonce, next nonce count. A request that already carried an answer of
// these credentials (the other leg retrying) stays in that answer's space,
// also outside the space's domain.
func (d *digestCredentials) Authorize(r *AuthRequest) error {
	st, _ := r.State.(*digestState)
	if st != nil && st.dc != nil {
		dc := st.dc
		st.dc = nil
		d.mu.Lock()
		nc, ok := d.counts.next(dc.nonce)
		d.mu.Unlock()
		if !ok {
			return fmt.Errorf("%w: every Digest nonce count of the challenge's nonce was used", ErrNoCredentials)
		}
		return d.answer(r, st, st.space, dc, nc)
	}
	o, proxy := r.Origin(), r.Proxy() != nil
	path := r.Request().URL.EscapedPath()
	d.mu.Lock()
	var space *digestSpace
	best := 0
	for _, s := range d.spaces {
		if c := s.covers(o, path, proxy); c > best {
			space, best = s, c
		}
	}
	if space == nil && st != nil {
		space = st.space
	}
	if space == nil {
		d.mu.Unlock()
		return nil
	}
	// The count is taken under the lock so that no two requests share one
	// (RFC 7616 §3.4: a repeated nc is a replay).
	dc := space.dc
	nc, ok := d.counts.next(dc.nonce)
	d.mu.Unlock()
	if !ok {
		return nil // the nonce is used up: let the server challenge anew
	}
	return d.answer(r, st, space, &dc, nc)
}

// Refused chooses the strongest Digest challenge of the refusal for the next
// attempt. A stale nonce (stale=true) for the realm just answered asks for a
// RetryNonce: the same password with a new nonce (RFC 7616 §3.3).
func (d *digestCredentials) Refused(r *AuthRequest, refusal *Refusal) (Retry, error) {
	var (
		best     digestChallenge
		bestRank int
		bestCh   Challenge
		why      error
	)
	for _, ch := range refusal.Challenges {
		if !ch.Is("Digest") {
			continue
		}
		dc, err := parseDigestChallenge(ch)
		if err == nil && d.opts.DisallowMD5 && strings.HasPrefix(dc.alg.name, "MD5") {
			err = fmt.Errorf("%w: algorithm MD5 is disallowed by DigestOptions", ErrDigestChallenge)
		}
		if err != nil {
			why = err
			continue
		}
		if dc.alg.rank > bestRank {
			best, bestRank, bestCh = dc, dc.alg.rank, ch
		}
	}
	if bestRank == 0 {
		if why != nil {
			// Digest was asked for but cannot be answered: say why.
			return 0, errorf("%w: %w", ErrNoCredentials, why)
		}
		return 0, nil
	}
	st, _ := r.State.(*digestState)
	sent := st != nil && st.answer.authorization != "" && st.answer.authorization == r.Request().Header.Get(r.Field())
	want := RetryChallenge
	if sent && strings.EqualFold(bestCh.Params["stale"], "true") && st.space.realm == best.realm {
		want = RetryNonce
	}
	if refusal.Allowed&want == 0 {
		return want, nil // the ceiling refuses it; compute nothing
	}
	space := &digestSpace{origin: r.Origin(), proxy: r.Proxy() != nil, realm: best.realm, dc: best,
		userHA1: best.userHA1(d.username, d.password)}
	if !space.proxy {
		// domain is not meaningful for proxies (RFC 7616 §3.3).
		space.domain = digestDomain(bestCh.Params["domain"], r)
	}
	d.mu.Lock()
	if sent && strings.EqualFold(bestCh.Params["stale"], "true") && st.answer.nonce != best.nonce {
		// The server no longer accepts the nonce it refused (RFC 7616 §3.3).
		d.counts.retire(st.answer.nonce)
	}
	d.replaceSpace(space)
	d.mu.Unlock()
	if st == nil {
		st = &digestState{}
		r.State = st
	}
	st.space, st.dc = space, &best
	return want, nil
}

// replaceSpace puts s in place of the space of the same origin and realm,
// so that a new challenge's nonce replaces the old one. d.mu is held.
func (d *digestCredentials) replaceSpace(s *digestSpace) {
	for i, old := range d.spaces {
		if old.origin == s.origin && old.proxy == s.proxy && old.realm == s.realm {
			d.spaces[i] = s
			return
		}
	}
	if len(d.spaces) >= maxDigestSpaces {
		// Realms come from servers: keep the newest, so that a server
		// inventing realms cannot grow the list or the scan of each request.
		d.spaces = append(d.spaces[:0], d.spaces[1:]...)
	}
	d.spaces = append(d.spaces, s)
}

// maxDigestSpaces bounds the protection spaces one Digest credentials keep.
const maxDigestSpaces = 64

// maxDigestNonces bounds the nonces one Digest credentials count.
const maxDigestNonces = 4 * maxDigestSpaces

// nonceCounts hands out nonce counts (RFC 7616 §3.4: nc counts the requests
// sent with one nonce), per nonce and apart from the protection spaces, so
// that a nonce met again — repeated by a challenge, on a path outside the
// domain, on the other leg — continues its count. Its methods need
// digestCredentials.mu.
//
// A nonce is known by its keyed hash: a nonce can be as long as a header
// field, and two nonces whose hashes collided would only share one series
// of counts, each still rising. The table holds maxDigestNonces; when it is
// full one is forgotten. Retired nonces go first: those the server declared
// stale or replaced with a nextnonce, which it no longer accepts (RFC 7616
// §3.3, §3.5). Otherwise the least recently used goes, and its last count
// raises floor. A nonce not in the table starts above floor, so a nonce in
// use that was forgotten continues above every count it was sent with: no
// (nonce, nc) pair is sent twice while the server accepts the nonce. floor
// stays 0, and new nonces start at 1 as a server checking strict order
// wants, as long as only retired nonces are forgotten: the case with
// servers that hand out one nonce at a time.
type nonceCounts struct {
	seed  maphash.Seed
	m     map[uint64]*nonceCount
	floor uint32 // the highest count of a forgotten nonce that was not retired
	tick  uint64 // counts uses, to find the least recently used
}

type nonceCount struct {
	last    uint32 // the last count handed out
	used    uint64 // tick of the last use
	retired bool
}

// next returns the next count of nonce, or false when none is left.
func (c *nonceCounts) next(nonce string) (uint32, bool) {
	k := maphash.String(c.seed, nonce)
	e := c.m[k]
	if e == nil {
		if c.m == nil {
			c.m = make(map[uint64]*nonceCount)
		}
		if len(c.m) >= maxDigestNonces {
			c.forgetOne()
		}
		e = &nonceCount{last: c.floor}
		c.m[k] = e
	}
	if e.last == math.MaxUint32 {
		return 0, false
	}
	c.tick++
	e.last++
	e.used, e.retired = c.tick, false
	return e.last, true
}

// retire marks nonce as one the server accepts no more.
func (c *nonceCounts) retire(nonce string) {
	if e := c.m[maphash.String(c.seed, nonce)]; e != nil {
		e.retired = true
	}
}

// forgetOne drops a retired nonce if there is one, else the least recently
// used nonce, raising floor to its last count.
func (c *nonceCounts) forgetOne() {
	var victim uint64
	var ve *nonceCount
	for k, e := range c.m {
		if ve == nil || e.retired && !ve.retired || e.retired == ve.retired && e.used < ve.used {
			victim, ve = k, e
		}
	}
	if ve == nil {
		return
	}
	if !ve.retired {
		c.floor = max(c.floor, ve.last)
	}
	delete(c.m, victim)
}

// answer computes the field value for r, sets it, and keeps it in r.State
// for Observe.
func (d *digestCredentials) answer(r *AuthRequest, st *digestState, space *digestSpace, dc *digestChallenge, nc uint32) error {
	in := DigestInput{
		Username: d.username,
		Password: d.password,
		Method:   r.Request().Method,
		URI:      digestURI(r),
		Count:    nc,
	}
	if !dc.auth && dc.authInt {
		// Only auth-int is offered: the body is part of the hash.
		body, err := r.Body()
		if err != nil {
			return err
		}
		in.Body = body
	}
	a, err := dc.answer(in, &space.userHA1)
	if err != nil {
		return err
	}
	if st == nil {
		st = &digestState{}
		r.State = st
	}
	st.answer, st.space = a, space
	// A Digest response proves the password without revealing it, and is
	// bound to this request: it may cross plain http.
	r.SetProof(r.Field(), a.authorization)
	return nil
}

// Observe reads Authentication-Info (Proxy-Authentication-Info for a proxy):
// it verifies rspauth when the server sent one (mutual authentication, RFC
// 7616 §3.5) and adopts nextnonce for the requests that follow.
func (d *digestCredentials) Observe(r *AuthRequest, resp *http.Response) error {
	field := "Authentication-Info"
	if r.Proxy() != nil {
		field = "Proxy-Authentication-Info"
	}
	values := resp.Header.Values(field)
	st, _ := r.State.(*digestState)
	if len(values) == 0 || st == nil || st.answer.authorization == "" || st.answer.authorization != r.Request().Header.Get(r.Field()) {
		return nil
	}
	var body []byte
	if st.answer.qop == qopAuthInt && strings.Contains(strings.Join(values, ","), "rspauth") {
		// rspauth then covers the response body (RFC 7616 §3.5).
		var err error
		if body, err = bufferResponseBody(resp, r.MaxBody()); err != nil {
			return err
		}
	}
	next, _, err := st.answer.checkAuthenticationInfo(strings.Join(values, ", "), body)
	if err != nil {
		return err
	}
	if next != "" && next != st.answer.nonce && isFieldText(next) {
		d.mu.Lock()
		// The server has named the nonce to use instead (RFC 7616 §3.5).
		d.counts.retire(st.answer.nonce)
		if st.space.dc.nonce == st.answer.nonce {
			st.space.dc.nonce = next
		}
		d.mu.Unlock()
	}
	return nil
}

// bufferResponseBody reads resp's body (up to limit bytes) so that it can be
// hashed, and puts an equal body back for the caller.
func bufferResponseBody(resp *http.Response, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reauth: reading the response body to verify rspauth: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: the response body is over %d bytes, too large to verify", ErrDigestRspauth, limit)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return data, nil
}

// digestURI is the request-target as the server receiving the credentials
// sees it: origin-form for the origin, absolute-form for a forward proxy,
// authority-form (host:port) for CONNECT (RFC 9112 §3.2).
func digestURI(r *AuthRequest) string {
	u := r.Request().URL
	switch {
	case r.Request().Method == http.MethodConnect:
		return r.Request().Host
	case r.Proxy() != nil:
		return u.Scheme + "://" + u.Host + u.RequestURI()
	}
	return u.RequestURI()
}

// digestDomain parses a domain parameter (RFC 7616 §3.3): a space-separated
// list of URIs, absolute or absolute paths. URIs on origins the Transport
// does not bind are dropped: the domain may widen the protection space only
// within Transport.Origins. An empty domain, or one with nothing left, means
// the whole origin.
func digestDomain(value string, r *AuthRequest) []domainURI {
	fields := strings.Fields(value)
	if len(fields) == 0 {
		return nil
	}
	base := r.Request().URL
	out := make([]domainURI, 0, len(fields))
	for _, f := range fields {
		u, err := url.Parse(f)
		if err != nil {
			continue
		}
		u = base.ResolveReference(u)
		if !r.Bound(u) {
			continue
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		out = append(out, domainURI{origin: originOf(u), path: path})
	}
	if len(out) == 0 {
		return nil // nothing within the bound origins: the origin itself
	}
	return out
}
