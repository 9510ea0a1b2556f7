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
	"strings"
)

// Errors of the Digest computation. They are wrapped with a message saying
// what was wrong; test for them with [errors.Is]. No error of this file ever
// contains the password, HA1 or a digest.
var (
	// ErrDigestChallenge reports a Digest challenge that cannot be answered,
	// whatever the reason, which the error's text gives: not a Digest
	// challenge, no realm or nonce, an algorithm that is not one of MD5,
	// SHA-256, SHA-512-256 or their -sess variants (RFC 7616 §3.3) or is
	// disallowed, no qop this package supports or not the one asked for, or
	// a value that cannot be written back into a header field.
	ErrDigestChallenge = errors.New("reauth: unusable Digest challenge")
	// ErrDigestRspauth reports an Authentication-Info field that does not
	// prove the server knows the password (RFC 7616 §3.5): rspauth wrong,
	// cnonce, nc or qop not those of the request, or the field malformed.
	// It matches [ErrMutualAuthentication] too, and so is final.
	// (Made in errors.go, with the other final sentinels.)
	ErrDigestRspauth error
)

// DigestInput is what [DigestAuthorization] needs besides the challenge: the
// user's credentials and the request they are for.
type DigestInput struct {
	Username, Password string // the user's credentials, as UTF-8
	Method, URI        string // URI is the request-target as sent, e.g. "/dir/index.html?x=1"
	Body               []byte // entity body, for qop=auth-int
	Cnonce             string // "" picks a random one
	Count              uint32 // nonce count; 0 means 1
	Qop                string // "" lets the function choose (auth preferred)
}

// digestAlgorithm is one algorithm of the Digest algorithm registry
// (RFC 7616 §3.3, §6.1).
type digestAlgorithm struct {
	name string     // as registered; matched case-insensitively
	h    digestHash // H of RFC 7616 §3.4.1
	sess bool       // HA1 is bound to nonce and cnonce (§3.4.2)
	rank int        // strength; see digestChallengeStrength
}

// digestAlgorithms lists what this package can answer. SHA-512-256 is FIPS
// 180-4 SHA-512/256, with its own initial hash value: a truncated SHA-512
// gives other digests (RFC 7616 erratum 4897).
var digestAlgorithms = [...]digestAlgorithm{
	{"MD5", hashMD5, false, 2},
	{"MD5-sess", hashMD5, true, 1},
	{"SHA-256", hashSHA256, false, 4},
	{"SHA-256-sess", hashSHA256, true, 3},
	{"SHA-512-256", hashSHA512_256, false, 6},
	{"SHA-512-256-sess", hashSHA512_256, true, 5},
}

// digestHash is a hash function of the registry. It hashes with the
// one-shot functions of crypto/md5, crypto/sha256 and crypto/sha512, which
// work on the caller's stack: a hash.Hash would be an allocation.
type digestHash int

const (
	hashMD5 digestHash = iota
	hashSHA256
	hashSHA512_256
)

// appendHex appends H(data) to dst as lower-case hex.
func (h digestHash) appendHex(dst, data []byte) []byte {
	switch h {
	case hashMD5:
		sum := md5.Sum(data)
		return hex.AppendEncode(dst, sum[:])
	case hashSHA256:
		sum := sha256.Sum256(data)
		return hex.AppendEncode(dst, sum[:])
	}
	sum := sha512.Sum512_256(data)
	return hex.AppendEncode(dst, sum[:])
}

// hexDigest is a digest as lower-case hex, held in place so that computing
// it allocates nothing: up to 64 digits (SHA-256, SHA-512/256).
type hexDigest struct {
	b [64]byte
	n int
}

func (h *hexDigest) bytes() []byte { return h.b[:h.n] }

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
		return digestChallenge{}, fmt.Errorf("%w: unsupported algorithm %s", ErrDigestChallenge, quoteForError(dc.algorithm))
	}

	var qop string
	if qop, dc.hasQop = ch.Params["qop"]; dc.hasQop {
		// qop-options is a quoted, comma-separated list; unknown values are
		// ignored (RFC 7616 §3.3).
		for opts := qop; opts != ""; {
			var opt string
			opt, opts, _ = strings.Cut(opts, ",")
			opt = trimOWS(opt)
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
	ha1           hexDigest // H(A1), session HA1 for -sess; secret
	nonce         string
	uri           string
	cnonce        string // "" in the RFC 2069 form
	nc            uint32 // nonce count; 0 in the RFC 2069 form
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
// Errors wrap [ErrDigestChallenge], or report bad input; none contains the
// password.
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
	return dc.answer(in, nil)
}

// answer computes the response of RFC 7616 §3.4.1 and writes the field value.
// userHA1, if not nil, is dc.userHA1 of in's username and password, kept
// from an earlier answer in the same protection space.
func (dc *digestChallenge) answer(in DigestInput, userHA1 *hexDigest) (digestAnswer, error) {
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
		a.nc = max(in.Count, 1)
	}

	if userHA1 != nil {
		a.ha1 = *userHA1
	} else {
		a.ha1 = dc.userHA1(in.Username, in.Password)
	}
	d := digester{h: dc.alg.h}
	if dc.alg.sess {
		// For -sess, A1 = H(username ":" realm ":" passwd) ":" nonce ":"
		// cnonce (RFC 7616 §3.4.2).
		d.addBytes(a.ha1.bytes())
		d.add(dc.nonce)
		d.add(a.cnonce)
		d.sum(&a.ha1)
	}
	// A2 = Method ":" request-uri [ ":" H(entity-body) ] (§3.4.3).
	var ha2, response hexDigest
	d.add(method)
	d.add(in.URI)
	if qop == qopAuthInt {
		var body hexDigest
		body.n = len(dc.alg.h.appendHex(body.b[:0], in.Body))
		d.addBytes(body.bytes())
	}
	d.sum(&ha2)
	d.response(&a, ha2.bytes(), &response)
	a.authorization = dc.write(in.Username, &a, response.bytes(), &d)
	return a, nil
}

// userHA1 computes H(A1) with A1 = username ":" realm ":" passwd
// (RFC 7616 §3.4.2): the HA1 of every answer in the protection space, and
// the start of the session HA1 of the -sess algorithms.
func (dc *digestChallenge) userHA1(username, password string) hexDigest {
	d := digester{h: dc.alg.h}
	d.add(username)
	d.add(dc.realm)
	d.add(password)
	var ha1 hexDigest
	d.sum(&ha1)
	return ha1
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
	return "", fmt.Errorf("%w: qop %s not offered", ErrDigestChallenge, quoteForError(asked))
}

// write serialises the credentials in the order of RFC 7616 §3.9's examples.
// Values RFC 7616 §3.4 gives as quoted-string are always quoted; algorithm,
// qop, nc and userhash are tokens. The value is put together on the stack
// and copied once into the string: its only allocation, of its exact size.
func (dc *digestChallenge) write(username string, a *digestAnswer, response []byte, d *digester) string {
	b := make([]byte, 0, 512)
	b = append(b, "Digest "...)
	switch {
	case dc.userhash:
		// username = H(unq(username) ":" unq(realm)) (§3.4.4).
		var uh hexDigest
		d.add(username)
		d.add(dc.realm)
		d.sum(&uh)
		b = append(b, `username="`...)
		b = append(b, uh.bytes()...)
		b = append(b, `", userhash=true`...)
	case isFieldText(username) && isASCII(username):
		b = append(b, "username="...)
		b = appendQuotedString(b, username)
	default:
		// Not representable as a quoted-string of printable ASCII (§3.4).
		b = append(b, "username*=UTF-8''"...)
		b = appendExtValueChars(b, username)
	}
	b = append(b, ", realm="...)
	b = appendQuotedString(b, dc.realm)
	b = append(b, ", uri="...)
	b = appendQuotedString(b, a.uri)
	if dc.algorithm != "" {
		// Echoed as the challenge gave it (§3.4); absent stays absent.
		b = append(b, ", algorithm="...)
		b = append(b, dc.algorithm...)
	}
	b = append(b, ", nonce="...)
	b = appendQuotedString(b, dc.nonce)
	if a.qop != "" {
		nc := formatNonceCount(a.nc)
		b = append(b, ", nc="...)
		b = append(b, nc[:]...)
		b = append(b, ", cnonce="...)
		b = appendQuotedString(b, a.cnonce)
		b = append(b, ", qop="...)
		b = append(b, a.qop...)
	}
	b = append(b, `, response="`...)
	b = append(b, response...)
	b = append(b, '"')
	if dc.hasOpaque {
		b = append(b, ", opaque="...)
		b = appendQuotedString(b, dc.opaque)
	}
	return string(b)
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
	nc := ""
	if a.qop != "" {
		b := formatNonceCount(a.nc)
		nc = string(b[:])
	}
	for _, p := range [...]struct{ name, want string }{{"qop", a.qop}, {"cnonce", a.cnonce}, {"nc", nc}} {
		if got, ok := params[p.name]; ok && !strings.EqualFold(got, p.want) {
			return "", false, fmt.Errorf("%w: %s is not the request's", ErrDigestRspauth, p.name)
		}
	}
	want := a.rspauth(responseBody)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(rspauth)), want.bytes()) != 1 {
		return "", false, fmt.Errorf("%w: rspauth does not match", ErrDigestRspauth)
	}
	return params["nextnonce"], true, nil
}

// rspauth computes the rspauth the server should send for the request a
// answered: the response with an empty method, A2 = ":" uri, or
// ":" uri ":" H(entity-body) for auth-int (RFC 2617 §3.2.3).
func (a *digestAnswer) rspauth(responseBody []byte) hexDigest {
	d := digester{h: a.alg.h}
	var ha2, out hexDigest
	d.add("")
	d.add(a.uri)
	if a.qop == qopAuthInt {
		var body hexDigest
		body.n = len(a.alg.h.appendHex(body.b[:0], responseBody))
		d.addBytes(body.bytes())
	}
	d.sum(&ha2)
	d.response(a, ha2.bytes(), &out)
	return out
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
	a, err := dc.answer(used, nil)
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

// digester computes H and KD of RFC 7616 §3.4.1 without allocating: the
// parts of the data to hash are joined in an array of its own, which lives
// on its user's stack (only data that outgrows it, a long URI say, goes to
// the heap), and each digest goes into a hexDigest. KD(secret, data) is the
// digest of secret and data as parts.
type digester struct {
	h     digestHash
	parts int
	n     int // bytes of buf in use
	buf   [512]byte
	long  []byte // the data instead of buf, once it has outgrown buf
}

// add appends a part of the data to hash; parts are joined by ':'.
func (d *digester) add(part string) { addPart(d, part) }

// addBytes is add for a part held as bytes, such as a digest.
func (d *digester) addBytes(part []byte) { addPart(d, part) }

func addPart[T string | []byte](d *digester, part T) {
	if d.parts > 0 {
		putData(d, ":")
	}
	putData(d, part)
	d.parts++
}

func putData[T string | []byte](d *digester, p T) {
	if d.long == nil && d.n+len(p) <= len(d.buf) {
		d.n += copy(d.buf[d.n:], p)
		return
	}
	if d.long == nil {
		d.long = append(make([]byte, 0, 2*(d.n+len(p))), d.buf[:d.n]...)
		clear(d.buf[:d.n]) // it may hold the password
	}
	d.long = append(d.long, p...)
}

// sum puts H(the parts added) into out and starts a new digest. It clears
// the data it hashed, which may hold the password.
func (d *digester) sum(out *hexDigest) {
	data := d.buf[:d.n]
	if d.long != nil {
		data = d.long
	}
	out.n = len(d.h.appendHex(out.b[:0], data))
	clear(data)
	d.n, d.parts = 0, 0
	if d.long != nil {
		d.long = d.long[:0]
	}
}

// response computes KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" HA2), or
// KD(HA1, nonce ":" HA2) without qop (RFC 7616 §3.4.1, RFC 2069 §2.1.2),
// into out.
func (d *digester) response(a *digestAnswer, ha2 []byte, out *hexDigest) {
	d.addBytes(a.ha1.bytes())
	d.add(a.nonce)
	if a.qop != "" {
		nc := formatNonceCount(a.nc)
		d.addBytes(nc[:])
		d.add(a.cnonce)
		d.add(a.qop)
	}
	d.addBytes(ha2)
	d.sum(out)
}

// randomCnonce returns 128 random bits as hex. crypto/rand.Read does not
// fail (it aborts the program if the system has no randomness).
func randomCnonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// formatNonceCount writes nc as 8 lower-case hex digits (RFC 7616 §3.4).
func formatNonceCount(n uint32) [8]byte {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return b
}

// appendExtValueChars percent-encodes v as the value-chars of an RFC 8187
// ext-value: attr-char stays, every other byte becomes %XX.
func appendExtValueChars(b []byte, v string) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAttrChar(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', digits[c>>4], digits[c&0xf])
	}
	return b
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

// trimOWS removes optional whitespace (SP, HTAB; RFC 9110 §5.6.3) around v.
func trimOWS(v string) string {
	for v != "" && isWS(v[0]) {
		v = v[1:]
	}
	for v != "" && isWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
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
