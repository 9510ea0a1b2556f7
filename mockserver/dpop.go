package mockserver

// The server's own JOSE: just enough of JWS (RFC 7515), JWK (RFC 7517) and
// JWT (RFC 7519) to verify DPoP proofs (RFC 9449 §4.3) and client
// assertions (RFC 7523 §3), written from the RFCs on the standard library.
// It shares no code with reauth's proof and assertion code, which it is
// the test oracle for: a bug on one side must not hide on the other.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxJWTBytes bounds a DPoP proof or client assertion; a proof with an
// RSA-8192 jwk is about 3 KiB.
const maxJWTBytes = 8 << 10

// maxReplayEntries bounds each replay store (proof and assertion jtis).
const maxReplayEntries = 50_000

// dpopAlgs are the proof algorithms the server accepts, as its challenges
// list them (RFC 9449 §7.1, algs).
const dpopAlgs = "ES256 EdDSA PS256"

// b64 is base64url without padding, strict about trailing bits (RFC 7515 §2).
var b64 = base64.RawURLEncoding.Strict()

// jwt is a parsed, not yet verified, JWS compact serialization.
type jwt struct {
	header, claims map[string]json.RawMessage
	signingInput   string // BASE64URL(header) "." BASE64URL(payload)
	signature      []byte
}

// parseJWT splits and decodes a compact JWS whose header and payload are
// JSON objects. A member named twice is refused (RFC 7515 §5.2 allows
// refusing, and a verifier that takes the last one invites confusion).
func parseJWT(s string) (*jwt, error) {
	if len(s) > maxJWTBytes {
		return nil, fmt.Errorf("the JWT is over %d bytes", maxJWTBytes)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("the JWT is not three base64url parts separated by '.' (JWS compact serialization)")
	}
	var t jwt
	var err error
	if t.header, err = decodeJSONPart(parts[0]); err != nil {
		return nil, fmt.Errorf("the JOSE header %v", err)
	}
	if t.claims, err = decodeJSONPart(parts[1]); err != nil {
		return nil, fmt.Errorf("the claims %v", err)
	}
	if t.signature, err = b64.DecodeString(parts[2]); err != nil {
		return nil, errors.New("the signature is not base64url without padding")
	}
	t.signingInput = parts[0] + "." + parts[1]
	return &t, nil
}

func decodeJSONPart(part string) (map[string]json.RawMessage, error) {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return nil, errors.New("are not base64url without padding")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("are not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("are not valid JSON")
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("are not valid JSON")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("name %s twice", printable(name))
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("are not valid JSON")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("have data after the JSON object")
	}
	return m, nil
}

// str returns member name of m as a string; ok is false when it is absent
// or not a JSON string.
func str(m map[string]json.RawMessage, name string) (v string, ok bool) {
	raw, present := m[name]
	if !present || json.Unmarshal(raw, &v) != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
		return "", false
	}
	return v, true
}

// numericDate returns member name of m as a NumericDate (RFC 7519 §2):
// seconds since the epoch, fractions allowed.
func numericDate(m map[string]json.RawMessage, name string) (time.Time, bool) {
	raw, present := m[name]
	var f float64
	if !present || json.Unmarshal(raw, &f) != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// verifySignature checks sig over input with key under alg (RFC 7518 §3).
func verifySignature(alg string, key crypto.PublicKey, input string, sig []byte) error {
	h := sha256.Sum256([]byte(input))
	bad := fmt.Errorf("the %s signature does not verify with the key", alg)
	switch alg {
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return errors.New("alg ES256 needs a P-256 key")
		}
		if len(sig) != 64 { // R || S, 32 bytes each (RFC 7518 §3.4), not DER
			return fmt.Errorf("an ES256 signature is 64 bytes (R || S), not %d", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, h[:], r, s) {
			return bad
		}
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		if !ok {
			return errors.New("alg EdDSA needs an Ed25519 key")
		}
		if !ed25519.Verify(k, []byte(input), sig) {
			return bad
		}
	case "PS256", "RS256":
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key", alg)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("the RSA key has %d bits; at least 2048 are required (RFC 7518 §3.3)", k.N.BitLen())
		}
		var err error
		if alg == "PS256" {
			err = rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig)
		}
		if err != nil {
			return bad
		}
	default:
		return fmt.Errorf("alg %s is not supported", printable(alg))
	}
	return nil
}

// privateJWKMembers are the members that carry private (or symmetric) key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parsePublicJWK reads the public key of a jwk header parameter and
// returns it with its RFC 7638 thumbprint and the alg it is used with.
func parsePublicJWK(raw json.RawMessage) (key crypto.PublicKey, thumbprint, alg string, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, "", "", errors.New("jwk is not a JSON object")
	}
	for _, name := range privateJWKMembers {
		if _, ok := m[name]; ok {
			return nil, "", "", fmt.Errorf("jwk carries private key material (%s); a proof carries the public key only (RFC 9449 §4.2)", name)
		}
	}
	member := func(name string, size int) ([]byte, string, error) {
		v, ok := str(m, name)
		if !ok {
			return nil, "", fmt.Errorf("jwk lacks %s", name)
		}
		b, err := b64.DecodeString(v)
		if err != nil || (size > 0 && len(b) != size) {
			return nil, "", fmt.Errorf("jwk %s is not base64url of %d bytes", name, size)
		}
		return b, v, nil
	}
	kty, _ := str(m, "kty")
	switch kty {
	case "EC":
		if crv, _ := str(m, "crv"); crv != "P-256" {
			return nil, "", "", errors.New("jwk: EC keys must be on crv P-256")
		}
		x, xs, err := member("x", 32)
		if err != nil {
			return nil, "", "", err
		}
		y, ys, err := member("y", 32)
		if err != nil {
			return nil, "", "", err
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", "", errors.New("jwk: the point is not on P-256")
		}
		return k, jwkThumbprint(map[string]string{"crv": "P-256", "kty": "EC", "x": xs, "y": ys}), "ES256", nil
	case "OKP":
		if crv, _ := str(m, "crv"); crv != "Ed25519" {
			return nil, "", "", errors.New("jwk: OKP keys must be on crv Ed25519")
		}
		x, xs, err := member("x", ed25519.PublicKeySize)
		if err != nil {
			return nil, "", "", err
		}
		return ed25519.PublicKey(x), jwkThumbprint(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": xs}), "EdDSA", nil
	case "RSA":
		n, ns, err := member("n", 0)
		if err != nil {
			return nil, "", "", err
		}
		e, es, err := member("e", 0)
		if err != nil {
			return nil, "", "", err
		}
		if len(n) == 0 || n[0] == 0 || len(n) > 1024 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
			return nil, "", "", errors.New("jwk: RSA n or e is empty, has leading zeros or is out of range (at most 8192 bits, e below 2^32)")
		}
		ev := new(big.Int).SetBytes(e)
		if ev.Int64() < 3 || ev.Bit(0) == 0 || ev.Int64() > 1<<31-1 {
			return nil, "", "", errors.New("jwk: RSA e must be odd, at least 3 and below 2^31")
		}
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}
		return k, jwkThumbprint(map[string]string{"e": es, "kty": "RSA", "n": ns}), "PS256", nil
	default:
		return nil, "", "", errors.New("jwk: kty must be EC, OKP or RSA")
	}
}

// jwkThumbprint is the JWK thumbprint of RFC 7638 §3: SHA-256 of the
// required members, lexicographically ordered, in JSON without whitespace,
// base64url-encoded.
func jwkThumbprint(required map[string]string) string {
	names := make([]string, 0, len(required))
	for n := range required {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(required[n])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return b64.EncodeToString(sum[:])
}

// replayStore remembers the jtis it was shown until they could no longer
// be accepted anyway (until). It is bounded: when full it forgets the entry
// that ends soonest and raises floor to its end, and from then on refuses
// any jti whose until is not after floor, as too old to check. So a
// forgotten jti can never be replayed.
type replayStore struct {
	mu    sync.Mutex
	max   int
	m     map[string]time.Time
	floor time.Time
}

func newReplayStore() *replayStore {
	return &replayStore{max: maxReplayEntries, m: map[string]time.Time{}}
}

// use records key, valid until until, at now. It returns an error when
// the key was used before or is too old to tell.
func (rs *replayStore) use(key string, until, now time.Time) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, seen := rs.m[key]; seen {
		return errors.New("jti was used before (a replay)")
	}
	if !until.After(rs.floor) {
		return errors.New("jti is too old for the replay check to remember; send a fresh one")
	}
	if len(rs.m) >= rs.max {
		for k, u := range rs.m {
			if !u.After(now) {
				delete(rs.m, k)
			}
		}
	}
	for len(rs.m) >= rs.max {
		var oldest string
		var end time.Time
		for k, u := range rs.m {
			if oldest == "" || u.Before(end) {
				oldest, end = k, u
			}
		}
		delete(rs.m, oldest)
		if end.After(rs.floor) {
			rs.floor = end
		}
		if !until.After(rs.floor) {
			return errors.New("jti is too old for the replay check to remember; send a fresh one")
		}
	}
	rs.m[key] = until
	return nil
}

// dpopFailure is why a DPoP proof was refused: code invalid_dpop_proof, or
// use_dpop_nonce when only the nonce was missing or stale (RFC 9449 §12.2).
type dpopFailure struct {
	code, desc string
}

func badProof(format string, args ...any) *dpopFailure {
	return &dpopFailure{"invalid_dpop_proof", "DPoP proof: " + fmt.Sprintf(format, args...)}
}

// dpopCheck is what a proof must match.
type dpopCheck struct {
	method string // htm
	url    string // htu: the request's URL without query and fragment
	token  string // the access token presented with it (ath); "" at the token endpoint
	nonce  string // the nonce it must carry; "" when none is required
}

// verifyDPoP checks the DPoP proof of r (RFC 9449 §4.3) and returns the
// thumbprint of its key. The jti is recorded only for a proof that passes
// every other check, so that a proof refused for its nonce alone does not
// use up anything.
func (s *Server) verifyDPoP(r *http.Request, want dpopCheck) (jkt string, f *dpopFailure) {
	values := r.Header.Values("DPoP")
	switch {
	case len(values) == 0:
		return "", badProof("the request has no DPoP header field")
	case len(values) > 1:
		return "", badProof("%d DPoP header fields; a request carries one (RFC 9449 §4.3)", len(values))
	}
	t, err := parseJWT(strings.TrimSpace(values[0]))
	if err != nil {
		return "", badProof("%v", err)
	}
	if typ, _ := str(t.header, "typ"); typ != "dpop+jwt" {
		return "", badProof(`typ must be "dpop+jwt"`)
	}
	alg, _ := str(t.header, "alg")
	if !strings.Contains(" "+dpopAlgs+" ", " "+alg+" ") {
		return "", badProof("alg %s is not one of %s", printable(alg), dpopAlgs)
	}
	rawKey, ok := t.header["jwk"]
	if !ok {
		return "", badProof("the header has no jwk")
	}
	key, jkt, keyAlg, err := parsePublicJWK(rawKey)
	if err != nil {
		return "", badProof("%v", err)
	}
	if alg != keyAlg {
		return "", badProof("alg %s does not fit the jwk (%s)", alg, keyAlg)
	}
	if err := verifySignature(alg, key, t.signingInput, t.signature); err != nil {
		return "", badProof("%v", err)
	}
	jti, ok := str(t.claims, "jti")
	if !ok || jti == "" || len(jti) > 256 {
		return "", badProof("jti must be a string of 1 to 256 characters")
	}
	if htm, _ := str(t.claims, "htm"); htm != want.method {
		return "", badProof("htm is not the request method %s", want.method)
	}
	htu, _ := str(t.claims, "htu")
	if strings.ContainsAny(htu, "?#") {
		return "", badProof("htu carries a query or fragment; it must not (RFC 9449 §4.2)")
	}
	if !sameHTU(htu, want.url) {
		return "", badProof("htu is not the request's URL %s", want.url)
	}
	iat, ok := numericDate(t.claims, "iat")
	now := s.clock.Now()
	window := s.cfg.DPoP.ProofWindow
	switch {
	case !ok:
		return "", badProof("iat is missing or not a NumericDate")
	case iat.After(now.Add(window)), iat.Before(now.Add(-window)):
		return "", badProof("iat is more than %v from the server's time", window)
	}
	ath, hasAth := str(t.claims, "ath")
	switch {
	case want.token == "" && hasAth:
		return "", badProof("ath is for requests that present an access token")
	case want.token != "" && ath != accessTokenHash(want.token):
		return "", badProof("ath is not the base64url SHA-256 of the access token")
	}
	if want.nonce != "" {
		if n, _ := str(t.claims, "nonce"); n != want.nonce {
			return "", &dpopFailure{"use_dpop_nonce", "the DPoP proof must carry the server's current nonce (RFC 9449 §8)"}
		}
	}
	if err := s.dpopJTIs.use(jkt+" "+jti, iat.Add(window), now); err != nil {
		return "", badProof("%v", err)
	}
	return jkt, nil
}

// accessTokenHash is ath: base64url(SHA-256(ASCII(token))) (RFC 9449 §4.2).
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

// sameHTU compares URLs after the normalizations of RFC 3986 §6.2.2 and
// §6.2.3 that matter here: case of scheme and host, default ports, and an
// empty path as "/" (RFC 9449 §4.3, step 9).
func sameHTU(htu, want string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(want)
	if err1 != nil || err2 != nil || a.Opaque != "" || a.User != nil {
		return false
	}
	norm := func(u *url.URL) string {
		scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		host = strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[scheme])
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return scheme + "://" + host + path
	}
	return norm(a) == norm(b)
}

// requestURL is the URL a proof's htu must name: the origin reached and
// the path as sent, without query.
func requestURL(r *http.Request) string {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if u, err := url.Parse(path); err == nil && u.IsAbs() {
		return u.Scheme + "://" + u.Host + u.EscapedPath()
	}
	return origin(r) + path
}
