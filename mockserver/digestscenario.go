package mockserver

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// digestVariant is one Digest scenario: /digest/ itself or a sub-path that
// fixes one feature.
type digestVariant struct {
	name         string   // sub-path under /digest/; "" for /digest/ itself
	algorithms   []string // nil: Config.Digest.Algorithms
	qop          []string // offered, in order
	userhash     bool     // challenge says userhash=true
	maxUses      int      // overrides Config.Digest.NonceMaxUses when non-zero
	nextNonce    bool     // always send nextnonce
	wrongRspauth bool     // always send a wrong rspauth
	about        string
	curl         string // which curl answers it (checked by hand); "" for /digest/: see curlNote
}

// Which curl answers a scenario: curl before 8.7 (Debian 12 has 7.88)
// computes a SHA-256 digest for SHA-512-256 challenges, and no curl checks
// rspauth.
const (
	curlAny       = "curl --digest: any version"
	curlSHA512256 = "curl --digest: 8.7 or later (older curl answers SHA-512-256 with a SHA-256 digest and gets 401)"
)

var digestVariants = []digestVariant{
	{name: "", qop: []string{"auth", "auth-int"},
		about: "one challenge per algorithm of Config.Digest.Algorithms (default SHA-256, MD5), strongest first; qop auth or auth-int"},
	{name: "strongest", algorithms: []string{"SHA-512-256", "SHA-256", "MD5"}, qop: []string{"auth", "auth-int"}, curl: curlSHA512256,
		about: "SHA-512-256, SHA-256 and MD5, one challenge each, strongest first: a client should answer SHA-512-256 (RFC 7616 §3.7)"},
	{name: "md5", algorithms: []string{"MD5"}, qop: []string{"auth"}, curl: curlAny, about: "MD5 only"},
	{name: "md5-sess", algorithms: []string{"MD5-sess"}, qop: []string{"auth"}, curl: curlAny, about: "MD5-sess only"},
	{name: "sha-256", algorithms: []string{"SHA-256"}, qop: []string{"auth"}, curl: curlAny, about: "SHA-256 only"},
	{name: "sha-256-sess", algorithms: []string{"SHA-256-sess"}, qop: []string{"auth"}, curl: curlAny, about: "SHA-256-sess only"},
	{name: "sha-512-256", algorithms: []string{"SHA-512-256"}, qop: []string{"auth"}, curl: curlSHA512256, about: "SHA-512-256 only"},
	{name: "sha-512-256-sess", algorithms: []string{"SHA-512-256-sess"}, qop: []string{"auth"}, curl: curlSHA512256, about: "SHA-512-256-sess only"},
	{name: "auth-int", algorithms: []string{"SHA-256"}, qop: []string{"auth-int"}, curl: curlAny, about: "SHA-256, qop=auth-int only: the request body is part of the digest"},
	{name: "userhash", algorithms: []string{"SHA-256"}, qop: []string{"auth"}, userhash: true, curl: curlAny, about: "SHA-256 with userhash=true (RFC 7616 §3.4.4); plain usernames accepted too"},
	{name: "stale", algorithms: []string{"SHA-256"}, qop: []string{"auth"}, maxUses: 1, curl: curlAny, about: "SHA-256; every nonce is good for one request, then stale=true"},
	{name: "nextnonce", algorithms: []string{"SHA-256"}, qop: []string{"auth"}, nextNonce: true, curl: curlAny, about: "SHA-256; Authentication-Info always carries nextnonce"},
	{name: "bad-rspauth", algorithms: []string{"SHA-256"}, qop: []string{"auth"}, wrongRspauth: true,
		curl: "curl --digest gets 200: curl does not check rspauth", about: "SHA-256; Authentication-Info carries a wrong rspauth"},
}

// curlNote says which curl answers the scenario, for the listing. curl
// answers the first Digest challenge, so for /digest/ that depends on the
// first of Config.Digest.Algorithms.
func (v digestVariant) curlNote(cfg Config) string {
	if v.curl != "" {
		return v.curl
	}
	return curlFor(v.offered(cfg))
}

// curlFor is the curl note for challenges offering algorithms, in order.
func curlFor(algorithms []string) string {
	if len(algorithms) > 0 && strings.HasPrefix(strings.ToUpper(algorithms[0]), "SHA-512-256") {
		return curlSHA512256
	}
	return curlAny
}

func (v digestVariant) path() string {
	if v.name == "" {
		return "/digest/"
	}
	return "/digest/" + v.name + "/"
}

func (v digestVariant) realmKey() string {
	if v.name == "" {
		return "digest"
	}
	return "digest/" + v.name
}

func (v digestVariant) offered(cfg Config) []string {
	if v.algorithms == nil {
		return cfg.Digest.Algorithms
	}
	return v.algorithms
}

// digestVariantFor picks the variant by the first path segment after
// /digest/; any other path under /digest/ is /digest/ itself.
func digestVariantFor(path string) digestVariant {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/digest/"), "/")
	for _, v := range digestVariants[1:] {
		if seg == v.name {
			return v
		}
	}
	return digestVariants[0]
}

func (s *Server) serveDigest(w http.ResponseWriter, r *http.Request) {
	v := digestVariantFor(r.URL.Path)
	realm := s.Realm(v.realmKey())
	c, p := readAuthorization(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if c == nil || !c.Is("Digest") {
		s.digestChallenge(w, v, realm, false, "Digest credentials required")
		return
	}
	maxUses := s.cfg.Digest.NonceMaxUses
	if v.maxUses != 0 {
		maxUses = v.maxUses
	}
	vd, ref := s.verifyDigest(c, r, digestRules{realm: realm, algorithms: v.offered(s.cfg), qop: v.qop, maxUses: maxUses})
	switch {
	case ref != nil && ref.bad != nil:
		writeProblem(w, ref.bad)
		return
	case ref != nil:
		s.digestChallenge(w, v, realm, ref.stale, ref.msg)
		return
	}
	respBody := okBody(okInfo{Scenario: "digest", User: vd.username, Path: r.URL.Path, Algorithm: vd.alg.name, Qop: vd.qop})
	w.Header().Set("Authentication-Info", s.authenticationInfo(vd, respBody, v.nextNonce, v.wrongRspauth))
	writeJSONBytes(w, http.StatusOK, respBody)
}

// digestRules are what one Digest protection space of the server accepts:
// a scenario of /digest/, or the proxy.
type digestRules struct {
	realm      string
	algorithms []string // offered; one must be used
	qop        []string // offered; one must be used
	maxUses    int      // requests per nonce; 0: no limit
}

// refusal says why credentials were not accepted: bad is a 400 for
// credentials that are malformed or inconsistent with the challenge;
// otherwise the answer is a new challenge, with stale=true when only a
// Digest nonce was at fault (RFC 7616 §3.3). msg goes into the response
// body; it never quotes the credentials.
type refusal struct {
	bad   *problem
	stale bool
	msg   string
}

// verifiedDigest is a request whose Digest credentials were accepted, with
// what rspauth is computed from.
type verifiedDigest struct {
	digestExchange // username is the user's name, also when userhash was sent
	alg            digestAlgorithm
	opaque         string
}

// verifyDigest checks the Digest credentials c of r against rules
// (RFC 7616 §3.4) and counts the use of their nonce.
func (s *Server) verifyDigest(c *credentials, r *http.Request, rules digestRules) (verifiedDigest, *refusal) {
	bad := func(p *problem) (verifiedDigest, *refusal) { return verifiedDigest{}, &refusal{bad: p} }
	again := func(stale bool, msg string) (verifiedDigest, *refusal) {
		return verifiedDigest{}, &refusal{stale: stale, msg: msg}
	}
	dc, p := parseDigestCredentials(c)
	if p != nil {
		return bad(p)
	}
	if dc.realm != rules.realm {
		return again(false, "the credentials are for another realm")
	}
	algName := dc.algorithm
	if algName == "" {
		algName = "MD5" // RFC 7616 §3.3: absent means MD5
	}
	if !slices.ContainsFunc(rules.algorithms, func(a string) bool { return strings.EqualFold(a, algName) }) {
		return again(false, fmt.Sprintf("algorithm %s was not offered here", printable(algName)))
	}
	alg, _ := findDigestAlgorithm(algName)
	if len(dc.response) != alg.hexLen() {
		return bad(badRequest("response is %d hex digits; %s gives %d", len(dc.response), alg.name, alg.hexLen()))
	}
	if !slices.Contains(rules.qop, dc.qop) {
		return bad(badRequest("qop %s was not offered here (offered: %s)", printable(dc.qop), strings.Join(rules.qop, ", ")))
	}
	if !sameRequestTarget(dc.uri, r) {
		return bad(badRequest("uri does not match the request-target (RFC 7616 §3.4.6)"))
	}
	if st, ok := s.nonces.lookup(dc.nonce); ok && st.opaque != dc.opaque {
		return bad(badRequest("opaque is not the one sent with the nonce (RFC 7616 §3.3)"))
	}
	user, password, ok := s.digestUser(dc, alg, rules.realm)
	if !ok {
		return again(false, "unknown user")
	}
	body, _ := io.ReadAll(r.Body)
	x := digestExchange{
		username: user, realm: rules.realm, password: password,
		nonce: dc.nonce, cnonce: dc.cnonce, nc: dc.nc, qop: dc.qop,
		method: r.Method, uri: dc.uri, body: body,
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(dc.response)), []byte(alg.response(x))) != 1 {
		return again(false, "the response does not match: wrong password, or a digest computed differently")
	}
	nr := nonceRules{lifetime: s.cfg.Digest.NonceLifetime, maxUses: rules.maxUses, strict: s.cfg.Digest.StrictNonceCount}
	switch s.nonces.use(dc.nonce, rules.realm, dc.count, s.clock.Now(), nr) {
	case nonceStale:
		return again(true, "the nonce is stale; the credentials were right (RFC 7616 §3.3)")
	case nonceReplay:
		return again(false, fmt.Sprintf("nonce count %s was used before with this nonce", dc.nc))
	case nonceOutOfOrder:
		return again(false, fmt.Sprintf("nonce count %s is below one already used with this nonce, and counts must increase here", dc.nc))
	case nonceTooOld:
		return again(false, fmt.Sprintf("nonce count %s is too far behind the highest used with this nonce to check", dc.nc))
	}
	return verifiedDigest{digestExchange: x, alg: alg, opaque: dc.opaque}, nil
}

// authenticationInfo is the Authentication-Info (or, from the proxy,
// Proxy-Authentication-Info) field value for an accepted request: rspauth
// over respBody (RFC 7616 §3.5), and a nextnonce when asked for.
func (s *Server) authenticationInfo(vd verifiedDigest, respBody []byte, nextNonce, wrongRspauth bool) string {
	x := vd.digestExchange
	x.body = respBody
	rspauth := vd.alg.rspauth(x)
	if s.cfg.Digest.WrongRspauth || wrongRspauth {
		rspauth = flipHexDigit(rspauth)
	}
	var info []string
	if s.cfg.Digest.NextNonce || nextNonce {
		next, _ := s.nonces.issueWithOpaque(vd.realm, s.clock.Now(), vd.opaque)
		info = append(info, "nextnonce="+quote(next))
	}
	info = append(info, "qop="+vd.qop, "rspauth="+quote(rspauth), "cnonce="+quote(vd.cnonce), "nc="+vd.nc)
	return strings.Join(info, ", ")
}

// digestChallenge answers 401 with one challenge per offered algorithm, all
// sharing one new nonce.
func (s *Server) digestChallenge(w http.ResponseWriter, v digestVariant, realm string, stale bool, msg string) {
	for _, c := range s.digestChallenges(realm, v.offered(s.cfg), v.qop, v.path(), v.userhash, stale) {
		w.Header().Add("WWW-Authenticate", c)
	}
	writeText(w, http.StatusUnauthorized, msg)
}

// digestChallenges returns one challenge per algorithm, all sharing one new
// nonce and opaque. domain "" leaves the parameter out, as for a proxy
// (RFC 7616 §3.3).
func (s *Server) digestChallenges(realm string, algorithms, qop []string, domain string, userhash, stale bool) []string {
	nonce, opaque := s.nonces.issueWithOpaque(realm, s.clock.Now(), "")
	out := make([]string, 0, len(algorithms))
	for _, alg := range algorithms {
		var b strings.Builder
		b.WriteString("Digest realm=" + quote(realm))
		if domain != "" {
			b.WriteString(", domain=" + quote(domain))
		}
		fmt.Fprintf(&b, ", qop=%s, algorithm=%s, nonce=%s, opaque=%s, charset=UTF-8",
			quote(strings.Join(qop, ", ")), alg, quote(nonce), quote(opaque))
		if userhash {
			b.WriteString(", userhash=true")
		}
		if stale {
			b.WriteString(", stale=true")
		}
		out = append(out, b.String())
	}
	return out
}

// digestCredentials are the auth-params of Digest credentials
// (RFC 7616 §3.4).
type digestCredentials struct {
	username                       string // decoded from username* if that was sent; the hash when userhash
	userhash                       bool
	realm, nonce, uri, response    string
	algorithm, cnonce, opaque, qop string
	nc                             string // as sent, 8 hex digits
	count                          uint32 // nc's value
}

func parseDigestCredentials(c *credentials) (digestCredentials, *problem) {
	var d digestCredentials
	if c.Token68 != "" || c.Params == nil {
		return d, badRequest("Digest credentials must be auth-params")
	}
	p := c.Params
	for _, name := range []string{"realm", "nonce", "uri", "response", "qop", "cnonce", "nc"} {
		if _, ok := p[name]; !ok {
			return d, badRequest("Digest credentials lack %s (RFC 7616 §3.4)", name)
		}
	}
	d.realm, d.nonce, d.uri, d.response = p["realm"], p["nonce"], p["uri"], p["response"]
	d.algorithm, d.cnonce, d.opaque, d.qop, d.nc = p["algorithm"], p["cnonce"], p["opaque"], p["qop"], p["nc"]
	switch strings.ToLower(p["userhash"]) {
	case "", "false":
	case "true":
		d.userhash = true
	default:
		return d, badRequest("userhash must be true or false")
	}
	name, hasName := p["username"]
	ext, hasExt := p["username*"]
	switch {
	case hasName && hasExt:
		return d, badRequest("Digest credentials carry both username and username* (RFC 7616 §3.4)")
	case hasExt && d.userhash:
		return d, badRequest("username* cannot be used with userhash=true (RFC 7616 §3.4)")
	case hasExt:
		dec, err := decodeExtValue(ext)
		if err != nil {
			return d, badRequest("username*: %v", err)
		}
		d.username = dec
	case hasName:
		d.username = name
	default:
		return d, badRequest("Digest credentials lack username")
	}
	if len(d.nc) != 8 {
		return d, badRequest("nc must be 8 hex digits (RFC 7616 §3.4)")
	}
	n, err := strconv.ParseUint(d.nc, 16, 32)
	if err != nil || n == 0 {
		return d, badRequest("nc must be 8 hex digits, counting from 00000001 (RFC 7616 §3.4)")
	}
	d.count = uint32(n)
	if _, err := hex.DecodeString(d.response); err != nil || d.response == "" {
		return d, badRequest("response must be hex digits")
	}
	if d.cnonce == "" {
		return d, badRequest("cnonce is empty")
	}
	return d, nil
}

// digestUser finds the user the credentials name, by user-hash when
// userhash=true (RFC 7616 §3.4.4).
func (s *Server) digestUser(dc digestCredentials, alg digestAlgorithm, realm string) (user, password string, ok bool) {
	if !dc.userhash {
		password, ok = s.cfg.Users[dc.username]
		return dc.username, password, ok
	}
	for name, pw := range s.cfg.Users {
		if strings.EqualFold(alg.userhash(name, realm), dc.username) {
			return name, pw, true
		}
	}
	return "", "", false
}

// sameRequestTarget reports whether the uri of Digest credentials names the
// request-target of r (RFC 7616 §3.4.6): as sent, or in the other form. For
// an origin-form target that is the absolute URL; for the absolute-form
// target of a forward proxy it is the path and query, which curl sends and
// proxies such as squid accept. CONNECT's authority-form has no other form.
func sameRequestTarget(uri string, r *http.Request) bool {
	switch {
	case uri == r.RequestURI:
		return true
	case r.Method == http.MethodConnect:
		return false
	case r.URL.IsAbs():
		return uri == r.URL.RequestURI()
	}
	u, err := url.Parse(uri)
	return err == nil && u.IsAbs() && u.RequestURI() == r.URL.RequestURI()
}

// decodeExtValue decodes an RFC 8187 ext-value: charset'[language]'value with
// percent-encoded bytes; only UTF-8 is accepted.
func decodeExtValue(v string) (string, error) {
	charset, rest, ok1 := strings.Cut(v, "'")
	_, value, ok2 := strings.Cut(rest, "'")
	if !ok1 || !ok2 {
		return "", errors.New("not an RFC 8187 ext-value (charset'language'value)")
	}
	if !strings.EqualFold(charset, "UTF-8") {
		return "", errors.New("charset must be UTF-8")
	}
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		switch ch := value[i]; {
		case ch == '%':
			if i+2 >= len(value) {
				return "", errors.New("truncated percent-encoding")
			}
			n, err := strconv.ParseUint(value[i+1:i+3], 16, 8)
			if err != nil {
				return "", errors.New("bad percent-encoding")
			}
			b.WriteByte(byte(n))
			i += 2
		case isAttrChar(ch):
			b.WriteByte(ch)
		default:
			return "", fmt.Errorf("character %s not allowed in an ext-value", describe(ch))
		}
	}
	if !utf8.ValidString(b.String()) {
		return "", errors.New("value is not UTF-8")
	}
	return b.String(), nil
}

// isAttrChar reports whether c is an attr-char of RFC 8187 §3.2.1.
func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

func describe(c byte) string {
	if c > 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// flipHexDigit changes the last digit of a hex string, for a wrong rspauth.
func flipHexDigit(h string) string {
	last := h[len(h)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return h[:len(h)-1] + string(repl)
}
