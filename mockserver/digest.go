package mockserver

// The server's own Digest computation (RFC 7616 §3.4.1–§3.4.4, §3.5). It
// shares nothing with reauth's client-side code on purpose: it is the check
// on that code. Pure functions of their inputs, tested against the RFC's
// published examples.

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"strings"
)

// digestAlgorithm is one algorithm of the RFC 7616 §6.1 registry, with or
// without its -sess variant.
type digestAlgorithm struct {
	name string // as written in challenges: "SHA-512-256-sess"
	hash func() hash.Hash
	sess bool
}

var digestHashes = []struct {
	name string
	hash func() hash.Hash
}{
	{"MD5", md5.New},
	{"SHA-256", sha256.New},
	{"SHA-512-256", sha512.New512_256},
}

// findDigestAlgorithm looks an algorithm up by name, case-insensitively
// (RFC 7616 §3.3: "MD5", "SHA-256-sess", …).
func findDigestAlgorithm(name string) (digestAlgorithm, bool) {
	base, sess := name, false
	if len(name) > 5 && strings.EqualFold(name[len(name)-5:], "-sess") {
		base, sess = name[:len(name)-5], true
	}
	for _, h := range digestHashes {
		if strings.EqualFold(base, h.name) {
			a := digestAlgorithm{name: h.name, hash: h.hash, sess: sess}
			if sess {
				a.name += "-sess"
			}
			return a, true
		}
	}
	return digestAlgorithm{}, false
}

// h is H(data): the lower-case hex hash (RFC 7616 §3.4.1).
func (a digestAlgorithm) h(data string) string {
	d := a.hash()
	d.Write([]byte(data))
	return hex.EncodeToString(d.Sum(nil))
}

// hexLen is the length of H(…) in hex digits.
func (a digestAlgorithm) hexLen() int { return 2 * a.hash().Size() }

// kd is KD(secret, data) = H(concat(secret, ":", data)).
func (a digestAlgorithm) kd(secret, data string) string { return a.h(secret + ":" + data) }

// ha1 is H(A1) (RFC 7616 §3.4.2): A1 = username:realm:password, and for
// -sess H(username:realm:password):nonce:cnonce.
func (a digestAlgorithm) ha1(username, realm, password, nonce, cnonce string) string {
	ha1 := a.h(username + ":" + realm + ":" + password)
	if a.sess {
		return a.h(ha1 + ":" + nonce + ":" + cnonce)
	}
	return ha1
}

// ha2 is H(A2) (RFC 7616 §3.4.3): A2 = method:uri, and for qop=auth-int
// method:uri:H(entity-body).
func (a digestAlgorithm) ha2(qop, method, uri string, body []byte) string {
	if qop == "auth-int" {
		return a.h(method + ":" + uri + ":" + a.h(string(body)))
	}
	return a.h(method + ":" + uri)
}

// digestExchange is what both sides put into a response: the user's secret
// aside, the values of the Authorization field and the request.
type digestExchange struct {
	username, realm, password string
	nonce, cnonce, nc, qop    string
	method, uri               string
	body                      []byte // request body for the request digest, response body for rspauth
}

// response is the request-digest (RFC 7616 §3.4.1):
// KD(H(A1), nonce:nc:cnonce:qop:H(A2)).
func (a digestAlgorithm) response(x digestExchange) string {
	ha1 := a.ha1(x.username, x.realm, x.password, x.nonce, x.cnonce)
	return a.kd(ha1, x.nonce+":"+x.nc+":"+x.cnonce+":"+x.qop+":"+a.ha2(x.qop, x.method, x.uri, x.body))
}

// rspauth is the response-auth of Authentication-Info (RFC 7616 §3.5): the
// request-digest with an empty method in A2, and for auth-int the hash of the
// response body.
func (a digestAlgorithm) rspauth(x digestExchange) string {
	x.method = ""
	return a.response(x)
}

// userhash is the hashed username (RFC 7616 §3.4.4): H(username:realm).
func (a digestAlgorithm) userhash(username, realm string) string {
	return a.h(username + ":" + realm)
}
