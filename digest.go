package reauth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Errors of the Digest computation. They are wrapped with a message saying
// what was wrong; test for them with [errors.Is]. No error of this file ever
// contains the password, HA1 or a digest.
var (
	// ErrDigestChallenge reports a Digest challenge that cannot be answered:
	// not a Digest challenge, no realm or nonce, no qop this package supports,
	// or a value that cannot be written back into a header field.
	ErrDigestChallenge = errors.New("reauth: unusable Digest challenge")
	// ErrDigestAlgorithm reports a Digest challenge whose algorithm is not one
	// of MD5, SHA-256, SHA-512-256 or their -sess variants (RFC 7616 §3.3).
	ErrDigestAlgorithm = errors.New("reauth: unsupported Digest algorithm")
	// ErrDigestQop reports a qop that the caller asked for and the challenge
	// does not offer, or one this package does not know.
	ErrDigestQop = errors.New("reauth: Digest qop not offered")
	// ErrDigestRspauth reports an Authentication-Info field that does not
	// prove the server knows the password (RFC 7616 §3.5): rspauth wrong,
	// cnonce, nc or qop not those of the request, or the field malformed.
	ErrDigestRspauth = errors.New("reauth: Digest Authentication-Info does not authenticate the server")
)

// DigestInput is what [DigestAuthorization] needs besides the challenge: the
// user's credentials and the request they are for.
type DigestInput struct {
	Username, Password string
	Method, URI        string // URI is the request-target as sent, e.g. "/dir/index.html?x=1"
	Body               []byte // entity body, for qop=auth-int
	Cnonce             string // "" picks a random one
	Count              uint32 // nonce count; 0 means 1
	Qop                string // "" lets the function choose (auth preferred)
}

// digestAlgorithm is one algorithm of the Digest algorithm registry
// (RFC 7616 §3.3, §6.1).
type digestAlgorithm struct {
	name    string           // as registered; matched case-insensitively
	newHash func() hash.Hash // H of RFC 7616 §3.4.1
	sess    bool             // HA1 is bound to nonce and cnonce (§3.4.2)
	rank    int              // strength; see digestChallengeStrength
}

// digestAlgorithms lists what this package can answer. SHA-512-256 is FIPS
// 180-4 SHA-512/256, with its own initial hash value: a truncated SHA-512
// gives other digests (RFC 7616 erratum 4897).
var digestAlgorithms = [...]digestAlgorithm{
	{"MD5", md5.New, false, 2},
	{"MD5-sess", md5.New, true, 1},
	{"SHA-256", sha256.New, false, 4},
	{"SHA-256-sess", sha256.New, true, 3},
	{"SHA-512-256", sha512.New512_256, false, 6},
	{"SHA-512-256-sess", sha512.New512_256, true, 5},
}

func lookupDigestAlgorithm(name string) *digestAlgorithm {
	for i := range digestAlgorithms {
		if strings.EqualFold(digestAlgorithms[i].name, name) {
			return &digestAlgorithms[i]
		}
	}
	return nil
}

// Quality-of-protection values (RFC 7616 §3.3).
const (
	qopAuth    = "auth"
	qopAuthInt = "auth-int"
)

// digestChallenge is a Digest challenge checked and taken apart, ready to be
// answered any number of times (one per nonce count).
type digestChallenge struct {
	alg       *digestAlgorithm
	algorithm string // the algorithm parameter as sent, echoed (RFC 7616 §3.4); "" if absent
	realm     string
	nonce     string
	opaque    string
	hasOpaque bool
	hasQop    bool // false: the RFC 2069 form, no qop, cnonce or nc
	auth      bool // qop "auth" offered
	authInt   bool // qop "auth-int" offered
	userhash  bool
}

// parseDigestChallenge checks that ch can be answered and takes it apart.
// The algorithm defaults to MD5 when absent (RFC 7616 §3.3).
func parseDigestChallenge(ch Challenge) (digestChallenge, error) {
	if !ch.Is("Digest") {
		return digestChallenge{}, fmt.Errorf("%w: scheme is not Digest", ErrDigestChallenge)
	}
	var dc digestChallenge
	var ok bool
	if dc.realm, ok = ch.Params["realm"]; !ok {
		return digestChallenge{}, fmt.Errorf("%w: no realm", ErrDigestChallenge)
	}
	if dc.nonce = ch.Params["nonce"]; dc.nonce == "" {
		return digestChallenge{}, fmt.Errorf("%w: no nonce", ErrDigestChallenge)
	}
	dc.opaque, dc.hasOpaque = ch.Params["opaque"]
	for _, p := range [...]struct{ name, v string }{{"realm", dc.realm}, {"nonce", dc.nonce}, {"opaque", dc.opaque}} {
		if !isFieldText(p.v) {
			return digestChallenge{}, fmt.Errorf("%w: %s contains a control character", ErrDigestChallenge, p.name)
		}
	}

	dc.algorithm = ch.Params["algorithm"]
	if dc.algorithm == "" {
		dc.alg = lookupDigestAlgorithm("MD5")
	} else if dc.alg = lookupDigestAlgorithm(dc.algorithm); dc.alg == nil {
		return digestChallenge{}, fmt.Errorf("%w: %s", ErrDigestAlgorithm, quoteForError(dc.algorithm))
	}

	var qop string
	if qop, dc.hasQop = ch.Params["qop"]; dc.hasQop {
		// qop-options is a quoted, comma-separated list; unknown values are
		// ignored (RFC 7616 §3.3).
		for _, opt := range strings.Split(qop, ",") {
			opt = strings.Trim(opt, " \t")
			dc.auth = dc.auth || strings.EqualFold(opt, qopAuth)
			dc.authInt = dc.authInt || strings.EqualFold(opt, qopAuthInt)
		}
		if !dc.auth && !dc.authInt {
			return digestChallenge{}, fmt.Errorf("%w: offers qop %s, none of auth or auth-int", ErrDigestChallenge, quoteForError(qop))
		}
	} else if dc.alg.sess {
		// Session HA1 needs a cnonce, and without qop none may be sent
		// (RFC 2617 §3.2.2): the server could not compute the same HA1.
		return digestChallenge{}, fmt.Errorf("%w: algorithm %s without qop", ErrDigestChallenge, dc.alg.name)
	}
	dc.userhash = strings.EqualFold(ch.Params["userhash"], "true")
	return dc, nil
}

// digestChallengeStrength ranks a Digest challenge for choosing among
// several: SHA-512-256 6, SHA-512-256-sess 5, SHA-256 4, SHA-256-sess 3,
// MD5 2, MD5-sess 1, and 0 for a challenge that cannot be answered. RFC 7616
// §3.7 has the client take the first challenge it supports unless local
// policy says otherwise; preferring the strongest is that policy, and among
// equals the caller keeps the first. A -sess variant ranks just below its
// base: it is no stronger for the client, and a strict order keeps the
// choice deterministic.
func digestChallengeStrength(ch Challenge) int {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return 0
	}
	return dc.alg.rank
}

// digestAnswer is one computed answer to a Digest challenge: the
// Authorization field value and what checking the server's rspauth needs.
// It holds HA1, so it must not be logged or put into an error.
type digestAnswer struct {
	authorization string // `Digest username="…", …`
	alg           *digestAlgorithm
	ha1           string // hex H(A1), session HA1 for -sess; secret
	nonce         string
	uri           string
	cnonce        string // "" in the RFC 2069 form
	nc            string // 8 hex digits; "" in the RFC 2069 form
	qop           string // "auth", "auth-int", or "" (RFC 2069)
}

// DigestAuthorization answers a Digest challenge (RFC 7616 §3.4): it returns
// the value of the Authorization (or Proxy-Authorization) field for a request
// with in.Method and in.URI.
//
// The challenge's algorithm may be MD5, SHA-256, SHA-512-256 or a -sess
// variant, matched case-insensitively; qop auth is preferred to auth-int
// unless in.Qop names one; a challenge without qop gets the RFC 2069 answer,
// without cnonce and nc. With userhash=true the username is sent hashed
// (§3.4.4); otherwise a name that is not printable ASCII goes in username*
// (RFC 8187, UTF-8). An empty in.Method means GET.
//
// Errors wrap [ErrDigestChallenge], [ErrDigestAlgorithm] or [ErrDigestQop],
// or report bad input; none contains the password.
func DigestAuthorization(ch Challenge, in DigestInput) (string, error) {
	a, err := answerDigest(ch, in)
	if err != nil {
		return "", err
	}
	return a.authorization, nil
}

// answerDigest parses ch and answers it; see [DigestAuthorization].
func answerDigest(ch Challenge, in DigestInput) (digestAnswer, error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return digestAnswer{}, err
	}
	return dc.answer(in)
}

// answer computes the response of RFC 7616 §3.4.1 and writes the field value.
func (dc *digestChallenge) answer(in DigestInput) (digestAnswer, error) {
	method := in.Method
	if method == "" {
		method = "GET"
	}
	if !isToken(method) {
		return digestAnswer{}, errors.New("reauth: Digest request method is not a token")
	}
	if in.URI == "" {
		return digestAnswer{}, errors.New("reauth: Digest request URI is empty")
	}
	if !isFieldText(in.URI) {
		return digestAnswer{}, errors.New("reauth: Digest request URI contains a control character")
	}
	qop, err := dc.chooseQop(in.Qop)
	if err != nil {
		return digestAnswer{}, err
	}

	a := digestAnswer{alg: dc.alg, nonce: dc.nonce, uri: in.URI, qop: qop}
	if qop != "" {
		a.cnonce = in.Cnonce
		if a.cnonce == "" {
			a.cnonce = randomCnonce()
		} else if !isFieldText(a.cnonce) {
			return digestAnswer{}, errors.New("reauth: Digest cnonce contains a control character")
		}
		count := in.Count
		if count == 0 {
			count = 1
		}
		a.nc = formatNonceCount(count)
	}

	d := newDigester(dc.alg)
	defer d.wipe()
	// A1 = username ":" realm ":" passwd; for -sess,
	// H(A1) ":" nonce ":" cnonce (RFC 7616 §3.4.2).
	a.ha1 = d.sum(in.Username, dc.realm, in.Password)
	if dc.alg.sess {
		a.ha1 = d.sum(a.ha1, dc.nonce, a.cnonce)
	}
	// A2 = Method ":" request-uri [ ":" H(entity-body) ] (§3.4.3).
	var ha2 string
	if qop == qopAuthInt {
		ha2 = d.sum(method, in.URI, d.sumBytes(in.Body))
	} else {
		ha2 = d.sum(method, in.URI)
	}
	a.authorization = dc.write(in.Username, &a, d.response(&a, ha2), d)
	return a, nil
}

// chooseQop returns the qop to answer with: the one asked for if offered,
// else auth before auth-int, else "" for a challenge without qop.
func (dc *digestChallenge) chooseQop(asked string) (string, error) {
	switch {
	case asked == "":
		switch {
		case dc.auth:
			return qopAuth, nil
		case dc.authInt:
			return qopAuthInt, nil
		}
		return "", nil
	case strings.EqualFold(asked, qopAuth) && dc.auth:
		return qopAuth, nil
	case strings.EqualFold(asked, qopAuthInt) && dc.authInt:
		return qopAuthInt, nil
	}
	return "", fmt.Errorf("%w: %s", ErrDigestQop, quoteForError(asked))
}

// write serialises the credentials in the order of RFC 7616 §3.9's examples.
// Values RFC 7616 §3.4 gives as quoted-string are always quoted; algorithm,
// qop, nc and userhash are tokens.
func (dc *digestChallenge) write(username string, a *digestAnswer, response string, d *digester) string {
	var b strings.Builder
	b.Grow(160 + 2*(len(username)+len(dc.realm)+len(dc.nonce)+len(a.uri)+len(dc.opaque)+len(a.cnonce)))
	b.WriteString("Digest ")
	switch {
	case dc.userhash:
		// username = H(unq(username) ":" unq(realm)) (§3.4.4).
		b.WriteString(`username="`)
		b.WriteString(d.sum(username, dc.realm))
		b.WriteString(`", userhash=true`)
	case isFieldText(username) && isASCII(username):
		b.WriteString("username=")
		writeQuotedString(&b, username)
	default:
		// Not representable as a quoted-string of printable ASCII (§3.4).
		b.WriteString("username*=UTF-8''")
		writeExtValueChars(&b, username)
	}
	b.WriteString(", realm=")
	writeQuotedString(&b, dc.realm)
	b.WriteString(", uri=")
	writeQuotedString(&b, a.uri)
	if dc.algorithm != "" {
		// Echoed as the challenge gave it (§3.4); absent stays absent.
		b.WriteString(", algorithm=")
		b.WriteString(dc.algorithm)
	}
	b.WriteString(", nonce=")
	writeQuotedString(&b, dc.nonce)
	if a.qop != "" {
		b.WriteString(", nc=")
		b.WriteString(a.nc)
		b.WriteString(", cnonce=")
		writeQuotedString(&b, a.cnonce)
		b.WriteString(", qop=")
		b.WriteString(a.qop)
	}
	b.WriteString(`, response="`)
	b.WriteString(response)
	b.WriteByte('"')
	if dc.hasOpaque {
		b.WriteString(", opaque=")
		writeQuotedString(&b, dc.opaque)
	}
	return b.String()
}

// checkAuthenticationInfo verifies the Authentication-Info field value the
// server sent with its response to the request a answered (RFC 9110
// §11.6.3, which took over RFC 7615; RFC 7616 §3.5) and returns its
// nextnonce, "" if none. Several field lines are to be joined with ", ".
//
// rspauth is computed as the request's response with an empty method:
// A2 = ":" uri, or ":" uri ":" H(entity-body) for auth-int, where the entity
// body is the response's, which is what rspauth protects (RFC 2617 §3.2.3).
// Without rspauth there is nothing to verify: verified is false and err nil.
// A wrong rspauth, cnonce, nc or qop, or a malformed field, is an error
// wrapping [ErrDigestRspauth], and no nextnonce is returned with it.
func (a *digestAnswer) checkAuthenticationInfo(fieldValue string, responseBody []byte) (nextNonce string, verified bool, err error) {
	params, err := parseAuthParams(fieldValue)
	if err != nil {
		return "", false, err
	}
	rspauth, ok := params["rspauth"]
	if !ok {
		return params["nextnonce"], false, nil
	}
	for _, p := range [...]struct{ name, want string }{{"qop", a.qop}, {"cnonce", a.cnonce}, {"nc", a.nc}} {
		if got, ok := params[p.name]; ok && !strings.EqualFold(got, p.want) {
			return "", false, fmt.Errorf("%w: %s is not the request's", ErrDigestRspauth, p.name)
		}
	}
	d := newDigester(a.alg)
	defer d.wipe()
	var ha2 string
	if a.qop == qopAuthInt {
		ha2 = d.sum("", a.uri, d.sumBytes(responseBody))
	} else {
		ha2 = d.sum("", a.uri)
	}
	want := d.response(a, ha2)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(rspauth)), []byte(want)) != 1 {
		return "", false, fmt.Errorf("%w: rspauth does not match", ErrDigestRspauth)
	}
	return params["nextnonce"], true, nil
}

// checkDigestAuthenticationInfo is [digestAnswer.checkAuthenticationInfo] for
// a caller that kept the challenge and the input used rather than the answer:
// used must carry the cnonce, nonce count and qop that were sent.
func checkDigestAuthenticationInfo(ch Challenge, used DigestInput, fieldValue string, responseBody []byte) (nextNonce string, verified bool, err error) {
	dc, err := parseDigestChallenge(ch)
	if err != nil {
		return "", false, err
	}
	if used.Cnonce == "" && dc.hasQop {
		return "", false, errors.New("reauth: Digest cnonce of the request is needed to check rspauth")
	}
	a, err := dc.answer(used)
	if err != nil {
		return "", false, err
	}
	return a.checkAuthenticationInfo(fieldValue, responseBody)
}

// parseAuthParams parses a #auth-param list without an auth-scheme, the
// grammar of Authentication-Info (RFC 9110 §11.6.3), by parsing it as the
// parameters of a challenge.
func parseAuthParams(fieldValue string) (map[string]string, error) {
	// Leading empty list elements are allowed (RFC 9110 §5.6.1), but after a
	// scheme they would end its challenge.
	fieldValue = strings.TrimLeft(fieldValue, " \t,")
	chs, err := ParseChallenges("Authentication-Info " + fieldValue)
	if err != nil || len(chs) != 1 || chs[0].Token68 != "" {
		return nil, fmt.Errorf("%w: malformed Authentication-Info field", ErrDigestRspauth)
	}
	return chs[0].Params, nil
}

// digester computes H and KD of RFC 7616 §3.4.1 with one hash state and one
// buffer for all the digests of an answer.
type digester struct {
	h   hash.Hash
	buf []byte
	out [64]byte // room for the largest digest, so Sum does not allocate
}

func newDigester(alg *digestAlgorithm) *digester {
	return &digester{h: alg.newHash(), buf: make([]byte, 0, 256)}
}

// sum returns H(parts joined by ":") as lower-case hex. KD(secret, data) is
// sum(secret, data).
func (d *digester) sum(parts ...string) string {
	d.buf = d.buf[:0]
	for i, p := range parts {
		if i > 0 {
			d.buf = append(d.buf, ':')
		}
		d.buf = append(d.buf, p...)
	}
	return d.sumBytes(d.buf)
}

// sumBytes returns H(data) as lower-case hex.
func (d *digester) sumBytes(data []byte) string {
	d.h.Reset()
	d.h.Write(data)
	return hex.EncodeToString(d.h.Sum(d.out[:0]))
}

// response computes KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" HA2), or
// KD(HA1, nonce ":" HA2) without qop (RFC 7616 §3.4.1, RFC 2069 §2.1.2).
func (d *digester) response(a *digestAnswer, ha2 string) string {
	if a.qop == "" {
		return d.sum(a.ha1, a.nonce, ha2)
	}
	return d.sum(a.ha1, a.nonce, a.nc, a.cnonce, a.qop, ha2)
}

// wipe clears the buffer that held the password.
func (d *digester) wipe() { clear(d.buf[:cap(d.buf)]) }

// randomCnonce returns 128 random bits as hex. crypto/rand.Read does not
// fail (it aborts the program if the system has no randomness).
func randomCnonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// formatNonceCount writes nc as 8 lower-case hex digits (RFC 7616 §3.4).
func formatNonceCount(n uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// writeExtValueChars percent-encodes v as the value-chars of an RFC 8187
// ext-value: attr-char stays, every other byte becomes %XX.
func writeExtValueChars(b *strings.Builder, v string) {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
}

// isAttrChar reports whether c is an attr-char of RFC 8187 §3.2.1.
func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// isFieldText reports whether v can stand in a quoted-string of a header
// field: no control character other than HTAB (RFC 9110 §5.5, §5.6.4).
func isFieldText(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func isASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quoteForError quotes a value a server sent for an error message, cut short
// so that a hostile header cannot make the error large.
func quoteForError(v string) string {
	const limit = 32
	if len(v) > limit {
		return fmt.Sprintf("%q…", v[:limit])
	}
	return fmt.Sprintf("%q", v)
}
