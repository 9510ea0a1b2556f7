package reauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DPoPProof returns a DPoP proof JWT (RFC 9449 §4.2) for one request: a
// JWS of type dpop+jwt signed by key, whose header carries key's public
// JWK and whose claims are a unique jti, iat (now), htm (method) and htu
// (url without its query and fragment, scheme and host in lower case), ath
// (the SHA-256 of accessToken) when accessToken != "", and nonce when
// nonce != "".
//
// The algorithm follows from the key: ES256 for an ECDSA P-256 key, EdDSA
// for an Ed25519 key, PS256 for an RSA key of at least 2048 bits; any other
// key is refused. key may be any [crypto.Signer], one in a KMS or an HSM
// included: DPoPProof only calls its Public and Sign methods. The header of
// a key whose dynamic type is a pointer is computed once and remembered (a
// bounded number of keys), so that a proof costs little more than its
// signature.
func DPoPProof(key crypto.Signer, method, url, accessToken, nonce string) (string, error) {
	return dpopProofAt(key, method, url, accessToken, nonce, time.Now())
}

func dpopProofAt(key crypto.Signer, method, target, accessToken, nonce string, now time.Time) (string, error) {
	if key == nil {
		return "", errors.New("reauth: DPoP proof: the key is nil")
	}
	if !isToken(method) {
		return "", fmt.Errorf("reauth: DPoP proof: method %q is not an HTTP method", method)
	}
	htu, err := dpopTargetURI(target)
	if err != nil {
		return "", fmt.Errorf("reauth: DPoP proof: the request URL %v", err)
	}
	if nonce != "" && !isDPoPNonce(nonce) {
		// RFC 9449 §8.1: a nonce is 1*NQCHAR; anything else would be
		// written into the signed claims verbatim.
		return "", errors.New("reauth: DPoP proof: the server's nonce has characters RFC 9449 §8.1 does not allow (only visible ASCII without '\"' and '\\')")
	}
	jk, err := cachedDPoPKey(key)
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("reauth: DPoP proof: reading random bytes for jti: %w", err)
	}

	claims := make([]byte, 0, 96+len(htu)+len(nonce)+len(method))
	claims = append(claims, `{"jti":"`...)
	claims = base64.RawURLEncoding.AppendEncode(claims, jti[:])
	claims = append(claims, `","htm":`...)
	claims = appendJSONString(claims, method)
	claims = append(claims, `,"htu":`...)
	claims = appendJSONString(claims, htu)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	if accessToken != "" {
		ath := sha256.Sum256([]byte(accessToken))
		claims = append(claims, `,"ath":"`...)
		claims = base64.RawURLEncoding.AppendEncode(claims, ath[:])
		claims = append(claims, '"')
	}
	if nonce != "" {
		claims = append(claims, `,"nonce":"`...)
		claims = append(claims, nonce...) // NQCHAR needs no escaping
		claims = append(claims, '"')
	}
	claims = append(claims, '}')
	return jk.sign(key, jk.dpopHeader, claims)
}

// jwsKey is what signing with one key needs besides the key: its JWS
// algorithm, its public JWK (members in RFC 7638 order) and the encoded
// DPoP header that carries it.
type jwsKey struct {
	alg        string
	jwk        string // {"crv":…,"kty":…,…}: the thumbprint input too
	dpopHeader string // base64url of {"typ":"dpop+jwt","alg":…,"jwk":…}
}

// jwsKeyOf works out the algorithm and the public JWK of key.
func jwsKeyOf(pub crypto.PublicKey) (*jwsKey, error) {
	var alg, jwk string
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("reauth: an ECDSA key on %s cannot sign: ECDSA keys must be on P-256 (ES256); Ed25519 (EdDSA) and RSA of at least 2048 bits (PS256) work too", p.Curve.Params().Name)
		}
		b, err := p.Bytes()
		if err != nil || len(b) != 65 {
			return nil, errors.New("reauth: the ECDSA P-256 public key is not a valid point")
		}
		alg = "ES256"
		jwk = `{"crv":"P-256","kty":"EC","x":"` + base64.RawURLEncoding.EncodeToString(b[1:33]) +
			`","y":"` + base64.RawURLEncoding.EncodeToString(b[33:]) + `"}`
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("reauth: the Ed25519 public key is %d bytes long, not %d", len(p), ed25519.PublicKeySize)
		}
		alg = "EdDSA"
		jwk = `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(p) + `"}`
	case *rsa.PublicKey:
		if p.N == nil || p.N.BitLen() < 2048 {
			bits := 0
			if p.N != nil {
				bits = p.N.BitLen()
			}
			return nil, fmt.Errorf("reauth: an RSA key of %d bits cannot sign: RSA keys need at least 2048 bits (PS256); ECDSA P-256 (ES256) and Ed25519 (EdDSA) work too", bits)
		}
		alg = "PS256"
		jwk = `{"e":"` + base64.RawURLEncoding.EncodeToString(bigEndian(uint64(p.E))) +
			`","kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(p.N.Bytes()) + `"}`
	default:
		return nil, fmt.Errorf("reauth: a key whose public key is %T cannot sign: supported are ECDSA P-256 (ES256), Ed25519 (EdDSA) and RSA of at least 2048 bits (PS256)", pub)
	}
	header := `{"typ":"dpop+jwt","alg":"` + alg + `","jwk":` + jwk + `}`
	return &jwsKey{alg: alg, jwk: jwk, dpopHeader: base64.RawURLEncoding.EncodeToString([]byte(header))}, nil
}

// bigEndian is v in big-endian without leading zero bytes (RFC 7518
// §6.3.1.2: "e" as an unsigned integer in the fewest octets).
func bigEndian(v uint64) []byte {
	var b [8]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte(v)
		v >>= 8
	}
	return b[i:]
}

// sign returns the compact JWS of encHeader (already base64url) and
// claims, signed by key with k's algorithm.
func (k *jwsKey) sign(key crypto.Signer, encHeader string, claims []byte) (string, error) {
	enc := base64.RawURLEncoding
	sigLen := 64 // ES256 R||S and Ed25519
	if k.alg == "PS256" {
		sigLen = 512
	}
	buf := make([]byte, 0, len(encHeader)+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(sigLen))
	buf = append(buf, encHeader...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, claims)
	var sig []byte
	var err error
	switch k.alg {
	case "EdDSA":
		sig, err = key.Sign(rand.Reader, buf, crypto.Hash(0))
	case "ES256":
		h := sha256.Sum256(buf)
		if sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256); err == nil {
			sig, err = rawECDSASignature(sig)
		}
	case "PS256":
		h := sha256.Sum256(buf)
		sig, err = key.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	}
	if err != nil {
		return "", fmt.Errorf("reauth: signing with the %s key: %s", k.alg, strings.TrimPrefix(err.Error(), "reauth: "))
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// errECDSASignature is made once: rawECDSASignature runs for every proof.
var errECDSASignature = errors.New("reauth: the ECDSA signer returned a signature that is not ASN.1 DER SEQUENCE { r, s } on P-256")

// rawECDSASignature turns the ASN.1 DER signature a crypto.Signer returns
// for ECDSA (SEQUENCE { INTEGER r, INTEGER s }) into JWS's fixed-size
// R||S (RFC 7518 §3.4), 32 bytes each for P-256.
func rawECDSASignature(der []byte) ([]byte, error) {
	if len(der) < 8 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return nil, errECDSASignature
	}
	out := make([]byte, 64)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 3 || rest[0] != 0x02 || int(rest[1]) > len(rest)-2 || rest[1] == 0 {
			return nil, errECDSASignature
		}
		n := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		for len(n) > 0 && n[0] == 0 {
			n = n[1:]
		}
		if len(n) > 32 {
			return nil, errECDSASignature
		}
		copy(out[32*i+32-len(n):32*i+32], n)
	}
	if len(rest) != 0 {
		return nil, errECDSASignature
	}
	return out, nil
}

// JWKThumbprint returns the RFC 7638 thumbprint of pub (SHA-256,
// base64url without padding): what a server binds DPoP tokens to (the jkt
// of RFC 9449 §6) and a common key ID. pub is an *ecdsa.PublicKey on P-256,
// an ed25519.PublicKey or an *rsa.PublicKey of at least 2048 bits, the keys
// [DPoPProof] signs with; for a private key (a [crypto.Signer]) it is the
// thumbprint of its public key.
func JWKThumbprint(pub crypto.PublicKey) (string, error) {
	if s, ok := pub.(crypto.Signer); ok {
		pub = s.Public() // a private key: its public half
	}
	k, err := jwsKeyOf(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(k.jwk))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// maxCachedKeys bounds jwsKeys: programs hold a few keys, and a program
// that makes keys without end must not grow the cache without end.
const maxCachedKeys = 64

// jwsKeys remembers the jwsKey of signers whose dynamic type is a pointer
// (a pointer compares by identity and never panics as a map key) and of
// ed25519.PrivateKey values (a slice: by the public key in its second
// half). Other signers are worked out on every call. The cache keeps the
// keys in it reachable; it is emptied when it holds maxCachedKeys.
var jwsKeys struct {
	sync.RWMutex
	byPointer map[crypto.Signer]*jwsKey
	byEd25519 map[string]*jwsKey
}

func cachedDPoPKey(key crypto.Signer) (*jwsKey, error) {
	ed, isEd := key.(ed25519.PrivateKey)
	isEd = isEd && len(ed) == ed25519.PrivateKeySize
	byPointer := !isEd && reflect.TypeOf(key).Kind() == reflect.Pointer
	if isEd || byPointer {
		jwsKeys.RLock()
		var k *jwsKey
		if isEd {
			k = jwsKeys.byEd25519[string(ed[32:])]
		} else {
			k = jwsKeys.byPointer[key]
		}
		jwsKeys.RUnlock()
		if k != nil {
			return k, nil
		}
	}
	k, err := jwsKeyOf(key.Public())
	if err != nil || !(isEd || byPointer) {
		return k, err
	}
	jwsKeys.Lock()
	defer jwsKeys.Unlock()
	if len(jwsKeys.byPointer)+len(jwsKeys.byEd25519) >= maxCachedKeys || jwsKeys.byPointer == nil {
		jwsKeys.byPointer = make(map[crypto.Signer]*jwsKey)
		jwsKeys.byEd25519 = make(map[string]*jwsKey)
	}
	if isEd {
		jwsKeys.byEd25519[string(ed[32:])] = k
	} else {
		jwsKeys.byPointer[key] = k
	}
	return k, nil
}

// dpopTargetURI is the htu claim of a request to target (RFC 9449 §4.2):
// the URI without query and fragment (and without userinfo, which must not
// leak into a signed claim), scheme and host in lower case and the default
// port dropped (RFC 3986 §6.2.3), so that the server's comparison with the
// URI it was reached at holds. Its errors name no URL (one may carry
// secrets in its userinfo or query) and have no "reauth: " prefix.
func dpopTargetURI(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", errors.New("does not parse (want an absolute http or https URL)")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" {
		return "", errors.New("is not an absolute http or https URL")
	}
	host := strings.ToLower(u.Host)
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// isDPoPNonce reports whether s is 1*NQCHAR (RFC 9449 §8.1).
func isDPoPNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
