package reauth

import (
	"bufio"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ch builds an expected challenge from a scheme and name/value pairs; no
// pairs means no Params at all, as ParseChallenges returns.
func ch(scheme string, nameValues ...string) Challenge {
	c := Challenge{Scheme: scheme}
	if len(nameValues) > 0 {
		c.Params = make(map[string]string, len(nameValues)/2)
		for i := 0; i+1 < len(nameValues); i += 2 {
			c.Params[nameValues[i]] = nameValues[i+1]
		}
	}
	return c
}

// t68 builds an expected challenge that carries a token68.
func t68(scheme, token string) Challenge { return Challenge{Scheme: scheme, Token68: token} }

// errAt is where a malformed case must fail, and a word of the reason.
type errAt struct {
	field, offset int
	reason        string
}

type parseCase struct {
	name   string
	fields []string
	want   []Challenge
	err    *errAt // nil: the input is well-formed
}

// Examples from the RFCs, folded field lines joined with a space as a
// recipient does (RFC 9112 §5.2). Taken from the RFC texts, except where the
// name says "from the grammar": those are written from the section's ABNF.
var rfcCases = []parseCase{
	{
		name:   "RFC 9110 §11.6.1 two challenges on one field line",
		fields: []string{`Basic realm="simple", Newauth realm="apps",                  type=1, title="Login to \"apps\""`},
		want: []Challenge{
			ch("Basic", "realm", "simple"),
			ch("Newauth", "realm", "apps", "type", "1", "title", `Login to "apps"`),
		},
	},
	{
		name:   "RFC 7235 §4.1 the same challenges in the other order",
		fields: []string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
		want: []Challenge{
			ch("Newauth", "realm", "apps", "type", "1", "title", `Login to "apps"`),
			ch("Basic", "realm", "simple"),
		},
	},
	{
		name:   "RFC 9110 §11.6.1 the same challenges on two field lines",
		fields: []string{`Basic realm="simple"`, `Newauth realm="apps", type=1, title="Login to \"apps\""`},
		want: []Challenge{
			ch("Basic", "realm", "simple"),
			ch("Newauth", "realm", "apps", "type", "1", "title", `Login to "apps"`),
		},
	},
	{
		name:   "RFC 7617 §2 Basic challenge",
		fields: []string{`Basic realm="WallyWorld"`},
		want:   []Challenge{ch("Basic", "realm", "WallyWorld")},
	},
	{
		name:   "RFC 7617 §2 Basic credentials are a token68",
		fields: []string{`Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==`},
		want:   []Challenge{t68("Basic", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==")},
	},
	{
		name:   "RFC 7617 §2.1 Basic challenge with charset",
		fields: []string{`Basic realm="foo", charset="UTF-8"`},
		want:   []Challenge{ch("Basic", "realm", "foo", "charset", "UTF-8")},
	},
	{
		name:   "RFC 7617 §2.1 UTF-8 credentials are a token68",
		fields: []string{`Basic dGVzdDoxMjPCow==`},
		want:   []Challenge{t68("Basic", "dGVzdDoxMjPCow==")},
	},
	{
		name:   "RFC 6750 §3 Bearer challenge",
		fields: []string{`Bearer realm="example"`},
		want:   []Challenge{ch("Bearer", "realm", "example")},
	},
	{
		name:   "RFC 6750 §3 Bearer invalid_token",
		fields: []string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
		want:   []Challenge{ch("Bearer", "realm", "example", "error", "invalid_token", "error_description", "The access token expired")},
	},
	{
		name:   "RFC 6750 §3.1 Bearer insufficient_scope with scope, from the grammar",
		fields: []string{`Bearer realm="example", error="insufficient_scope", scope="openid profile email", error_uri="https://example.com/errors#scope"`},
		want: []Challenge{ch("Bearer", "realm", "example", "error", "insufficient_scope",
			"scope", "openid profile email", "error_uri", "https://example.com/errors#scope")},
	},
	{
		name:   "RFC 6750 §2.1 Bearer credentials are a token68",
		fields: []string{`Bearer mF_9.B5f-4.1JqM`},
		want:   []Challenge{t68("Bearer", "mF_9.B5f-4.1JqM")},
	},
	{
		name: "RFC 7616 §3.9.1 SHA-256 and MD5 challenges on two field lines",
		fields: []string{
			`Digest     realm="http-auth@example.org",     qop="auth, auth-int",     algorithm=SHA-256,     nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",     opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			`Digest     realm="http-auth@example.org",     qop="auth, auth-int",     algorithm=MD5,     nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",     opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
		},
		want: []Challenge{
			ch("Digest", "realm", "http-auth@example.org", "qop", "auth, auth-int", "algorithm", "SHA-256",
				"nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
			ch("Digest", "realm", "http-auth@example.org", "qop", "auth, auth-int", "algorithm", "MD5",
				"nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
		},
	},
	{
		name:   "RFC 7616 §3.9.1 SHA-256 and MD5 challenges on one field line",
		fields: []string{digestSHA256 + ", " + digestMD5},
		want: []Challenge{
			ch("Digest", "realm", "http-auth@example.org", "qop", "auth, auth-int", "algorithm", "SHA-256",
				"nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
			ch("Digest", "realm", "http-auth@example.org", "qop", "auth, auth-int", "algorithm", "MD5",
				"nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
		},
	},
	{
		name:   "RFC 7616 §3.9.2 SHA-512-256 with charset and userhash",
		fields: []string{digestSHA512},
		want: []Challenge{ch("Digest", "realm", "api@example.org", "qop", "auth", "algorithm", "SHA-512-256",
			"nonce", "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "opaque", "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
			"charset", "UTF-8", "userhash", "true")},
	},
	{
		name:   "RFC 7616 §3.3 every directive, from the grammar",
		fields: []string{`Digest realm="users@example.org", domain="/api /admin https://b.example.org/x", nonce="bm9uY2U=", opaque="b3BhcXVl", stale=TRUE, algorithm=SHA-256-sess, qop="auth,auth-int", charset=UTF-8, userhash=false`},
		want: []Challenge{ch("Digest", "realm", "users@example.org", "domain", "/api /admin https://b.example.org/x",
			"nonce", "bm9uY2U=", "opaque", "b3BhcXVl", "stale", "TRUE", "algorithm", "SHA-256-sess",
			"qop", "auth,auth-int", "charset", "UTF-8", "userhash", "false")},
	},
	{
		name:   "RFC 7616 §3.3 quoted algorithm and stale, from the grammar",
		fields: []string{`Digest realm="r", nonce="n", algorithm="MD5-sess", stale="false"`},
		want:   []Challenge{ch("Digest", "realm", "r", "nonce", "n", "algorithm", "MD5-sess", "stale", "false")},
	},
	{
		name:   "RFC 9470 §3 acr_values challenge",
		fields: []string{`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`},
		want: []Challenge{ch("Bearer", "error", "insufficient_user_authentication",
			"error_description", "A different authentication level is required", "acr_values", "myACR")},
	},
	{
		name:   "RFC 9470 §3 max_age challenge",
		fields: []string{`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"`},
		want: []Challenge{ch("Bearer", "error", "insufficient_user_authentication",
			"error_description", "More recent authentication is required", "max_age", "5")},
	},
	{
		name:   "RFC 9470 §3 max_age and acr_values together, from the text",
		fields: []string{`Bearer realm="example", error="insufficient_user_authentication", acr_values="urn:example:mfa urn:example:pwd", max_age=300`},
		want: []Challenge{ch("Bearer", "realm", "example", "error", "insufficient_user_authentication",
			"acr_values", "urn:example:mfa urn:example:pwd", "max_age", "300")},
	},
	{
		name:   "RFC 9449 §7.1 figure 15 DPoP algs",
		fields: []string{`DPoP algs="ES256 PS256"`},
		want:   []Challenge{ch("DPoP", "algs", "ES256 PS256")},
	},
	{
		name:   "RFC 9449 §7.1 figure 16 DPoP invalid_token",
		fields: []string{`DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"`},
		want:   []Challenge{ch("DPoP", "error", "invalid_token", "error_description", "Invalid DPoP key binding", "algs", "ES256")},
	},
	{
		name:   "RFC 9449 §7.1 DPoP credentials are a token68",
		fields: []string{`DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU`},
		want:   []Challenge{t68("DPoP", "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")},
	},
	{
		name:   "RFC 9449 §7.2 figure 17 Bearer without parameters then DPoP",
		fields: []string{`Bearer, DPoP algs="ES256 PS256"`},
		want:   []Challenge{ch("Bearer"), ch("DPoP", "algs", "ES256 PS256")},
	},
	{
		name:   "RFC 9449 §7.2 figure 18 Bearer error then DPoP",
		fields: []string{`Bearer error="invalid_token",     error_description="Invalid token", DPoP algs="ES256 PS256"`},
		want:   []Challenge{ch("Bearer", "error", "invalid_token", "error_description", "Invalid token"), ch("DPoP", "algs", "ES256 PS256")},
	},
	{
		name:   "RFC 9449 §7.2 figure 19 the same parameter names in two challenges",
		fields: []string{`Bearer error="invalid_request",  error_description="Multiple methods used to include access token",  DPoP algs="ES256 PS256", error="invalid_request",  error_description="Multiple methods used to include access token"`},
		want: []Challenge{
			ch("Bearer", "error", "invalid_request", "error_description", "Multiple methods used to include access token"),
			ch("DPoP", "algs", "ES256 PS256", "error", "invalid_request", "error_description", "Multiple methods used to include access token"),
		},
	},
	{
		name:   "RFC 9449 §9 figure 24 use_dpop_nonce",
		fields: []string{`DPoP error="use_dpop_nonce",   error_description="Resource server requires nonce in DPoP proof"`},
		want:   []Challenge{ch("DPoP", "error", "use_dpop_nonce", "error_description", "Resource server requires nonce in DPoP proof")},
	},
}

// Field values from RFC 7616 §3.9, used by the table and the benchmark.
const (
	digestSHA256 = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	digestMD5    = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	digestSHA512 = `Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true`
)

// The list rules, whitespace, quoting and token68 rules of RFC 9110 §5.6 and
// §11.2–§11.3, one behaviour per case.
var grammarCases = []parseCase{
	{name: "no field values", fields: nil, want: nil},
	{name: "an empty field value", fields: []string{""}, want: nil},
	{name: "only commas and whitespace", fields: []string{" , ,,\t, "}, want: nil},
	{name: "a scheme alone", fields: []string{"Basic"}, want: []Challenge{ch("Basic")}},
	{name: "a scheme with trailing whitespace", fields: []string{"Basic \t "}, want: []Challenge{ch("Basic")}},
	{name: "two schemes without parameters", fields: []string{"Bearer, Basic"}, want: []Challenge{ch("Bearer"), ch("Basic")}},
	{
		name:   "a scheme without parameters between two with",
		fields: []string{`Basic realm="a", Bearer, Digest realm="b", nonce="n"`},
		want:   []Challenge{ch("Basic", "realm", "a"), ch("Bearer"), ch("Digest", "realm", "b", "nonce", "n")},
	},
	{
		name:   "a lone token after parameters is a new challenge",
		fields: []string{`Basic realm="x", charset`},
		want:   []Challenge{ch("Basic", "realm", "x"), ch("charset")},
	},
	{
		name:   "several field lines keep their order",
		fields: []string{`Basic realm="a"`, `Bearer`, `Digest realm="b", nonce="c"`},
		want:   []Challenge{ch("Basic", "realm", "a"), ch("Bearer"), ch("Digest", "realm", "b", "nonce", "c")},
	},
	{
		name:   "empty field lines among others",
		fields: []string{"", `Basic realm="a"`, " , ", `Bearer`},
		want:   []Challenge{ch("Basic", "realm", "a"), ch("Bearer")},
	},
	{name: "leading commas", fields: []string{`,, ,Basic realm="x"`}, want: []Challenge{ch("Basic", "realm", "x")}},
	{name: "trailing commas", fields: []string{`Basic realm="x",,, ,`}, want: []Challenge{ch("Basic", "realm", "x")}},
	{
		name:   "empty elements between parameters",
		fields: []string{`Basic realm="x", , ,,charset="UTF-8"`},
		want:   []Challenge{ch("Basic", "realm", "x", "charset", "UTF-8")},
	},
	{
		name:   "empty elements between challenges",
		fields: []string{`Basic realm="x",,, ,Bearer realm="y"`},
		want:   []Challenge{ch("Basic", "realm", "x"), ch("Bearer", "realm", "y")},
	},
	{
		name:   "empty elements before the first parameter",
		fields: []string{`Bearer , realm="x" ,, error="invalid_token"`},
		want:   []Challenge{ch("Bearer", "realm", "x", "error", "invalid_token")},
	},
	{
		name:   "empty elements after a scheme then another challenge",
		fields: []string{`Bearer ,, , DPoP algs=ES256`},
		want:   []Challenge{ch("Bearer"), ch("DPoP", "algs", "ES256")},
	},
	{
		name:   "no whitespace around commas",
		fields: []string{`Basic realm="a",charset="UTF-8",Bearer realm="b"`},
		want:   []Challenge{ch("Basic", "realm", "a", "charset", "UTF-8"), ch("Bearer", "realm", "b")},
	},
	{name: "spaces around '=' (BWS)", fields: []string{`Basic realm  =  "x"`}, want: []Challenge{ch("Basic", "realm", "x")}},
	{name: "tabs around '=' (BWS)", fields: []string{"Basic realm\t=\t\"x\""}, want: []Challenge{ch("Basic", "realm", "x")}},
	{name: "a tab after the scheme", fields: []string{"Basic\trealm=\"x\""}, want: []Challenge{ch("Basic", "realm", "x")}},
	{name: "several spaces after the scheme", fields: []string{`Basic    realm="x"`}, want: []Challenge{ch("Basic", "realm", "x")}},
	{
		name:   "tabs around commas (OWS)",
		fields: []string{"Basic realm=x\t,\tcharset=y\t,\tBearer"},
		want:   []Challenge{ch("Basic", "realm", "x", "charset", "y"), ch("Bearer")},
	},
	{name: "whitespace around the field value", fields: []string{" \tBasic realm=x \t"}, want: []Challenge{ch("Basic", "realm", "x")}},
	{name: "a token value", fields: []string{`Digest algorithm=SHA-256`}, want: []Challenge{ch("Digest", "algorithm", "SHA-256")}},
	{name: "a token value with every tchar", fields: []string{"X v=!#$%&'*+-.^_`|~09azAZ"}, want: []Challenge{ch("X", "v", "!#$%&'*+-.^_`|~09azAZ")}},
	{name: "an empty quoted value", fields: []string{`Basic realm=""`}, want: []Challenge{ch("Basic", "realm", "")}},
	{name: "a comma inside a quoted value", fields: []string{`Bearer error_description="expired, renew it"`}, want: []Challenge{ch("Bearer", "error_description", "expired, renew it")}},
	{name: "an escaped quote", fields: []string{`Basic realm="say \"hi\""`}, want: []Challenge{ch("Basic", "realm", `say "hi"`)}},
	{name: "an escaped backslash", fields: []string{`Basic realm="C:\\dir\\"`}, want: []Challenge{ch("Basic", "realm", `C:\dir\`)}},
	{name: "any escaped character stands for itself", fields: []string{`Basic realm="\a\b\,\=\ \~"`}, want: []Challenge{ch("Basic", "realm", `ab,= ~`)}},
	{name: "an escaped tab", fields: []string{"Basic realm=\"a\\\tb\""}, want: []Challenge{ch("Basic", "realm", "a\tb")}},
	{name: "a tab inside a quoted value", fields: []string{"Basic realm=\"a\tb\""}, want: []Challenge{ch("Basic", "realm", "a\tb")}},
	{name: "obs-text inside a quoted value", fields: []string{`Basic realm="Grüße, 東京"`}, want: []Challenge{ch("Basic", "realm", "Grüße, 東京")}},
	{name: "an escaped obs-text byte", fields: []string{"Basic realm=\"\\\xe9\""}, want: []Challenge{ch("Basic", "realm", "\xe9")}},
	{
		name:   "a quoted value that looks like challenges",
		fields: []string{`Basic realm="Bearer realm=x, Digest nonce=\"y\"", charset=UTF-8`},
		want:   []Challenge{ch("Basic", "realm", `Bearer realm=x, Digest nonce="y"`, "charset", "UTF-8")},
	},
	{name: "'=' inside a quoted value", fields: []string{`X v="a=b=="`}, want: []Challenge{ch("X", "v", "a=b==")}},
	{name: "scheme case is kept", fields: []string{`bAsIc realm="x"`}, want: []Challenge{ch("bAsIc", "realm", "x")}},
	{
		name:   "parameter names are lower-cased",
		fields: []string{`Basic REALM="x", CharSet=UTF-8`},
		want:   []Challenge{ch("Basic", "realm", "x", "charset", "UTF-8")},
	},
	{name: "value case is kept", fields: []string{`Basic realm="WallyWorld", charset=uTf-8`}, want: []Challenge{ch("Basic", "realm", "WallyWorld", "charset", "uTf-8")}},
	{name: "value whitespace inside quotes is kept", fields: []string{`Basic realm="  two  spaces  "`}, want: []Challenge{ch("Basic", "realm", "  two  spaces  ")}},
	{
		name:   "a scheme of unusual tchars",
		fields: []string{"X-Custom!#$%&'*+.^_`|~ p=v"},
		want:   []Challenge{ch("X-Custom!#$%&'*+.^_`|~", "p", "v")},
	},
	{
		name:   "a token68 with padding",
		fields: []string{`Negotiate YIIBzgYGKwYBBQUCoIIBwjCCAb6g==`},
		want:   []Challenge{t68("Negotiate", "YIIBzgYGKwYBBQUCoIIBwjCCAb6g==")},
	},
	{name: "a token68 without padding", fields: []string{`Negotiate YIIBzgYGKwYB`}, want: []Challenge{t68("Negotiate", "YIIBzgYGKwYB")}},
	{name: "a token68 of every token68 character", fields: []string{`X aZ09-._~+/=`}, want: []Challenge{t68("X", "aZ09-._~+/=")}},
	{name: "a token68 with trailing whitespace", fields: []string{"Negotiate abc== \t"}, want: []Challenge{t68("Negotiate", "abc==")}},
	{name: "a token68 of one character and a run of padding", fields: []string{`X a===`}, want: []Challenge{t68("X", "a===")}},
	{
		name:   "a token68 then another challenge",
		fields: []string{`Negotiate abc==, Basic realm="x"`},
		want:   []Challenge{t68("Negotiate", "abc=="), ch("Basic", "realm", "x")},
	},
	{
		name:   "a token68 after a challenge with parameters",
		fields: []string{`Basic realm="x", Negotiate abc==`},
		want:   []Challenge{ch("Basic", "realm", "x"), t68("Negotiate", "abc==")},
	},
	{
		name:   "a token68 then empty elements then a challenge",
		fields: []string{`Negotiate abc,,, NTLM`},
		want:   []Challenge{t68("Negotiate", "abc"), ch("NTLM")},
	},
	{name: "name and '=' alone is a token68, not a parameter", fields: []string{`Newauth realm=`}, want: []Challenge{t68("Newauth", "realm=")}},
	{name: "a token after '=' makes a parameter, not a token68", fields: []string{`Negotiate ab=cd`}, want: []Challenge{ch("Negotiate", "ab", "cd")}},
	{name: "a token68 in a later field line", fields: []string{`Basic realm="x"`, `Negotiate abc=`}, want: []Challenge{ch("Basic", "realm", "x"), t68("Negotiate", "abc=")}},
	{
		name:   "many parameters",
		fields: []string{`X a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, i=9, j=10, k=11`},
		want:   []Challenge{ch("X", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8", "i", "9", "j", "10", "k", "11")},
	},
}

// Malformed input: what fails, where, and what comes back with the error.
var malformedCases = []parseCase{
	{
		name:   "an unterminated quoted-string",
		fields: []string{`Basic realm="abc`},
		err:    &errAt{0, 12, "unterminated"},
	},
	{
		name:   "an unterminated quoted-string holding a comma and a challenge",
		fields: []string{`Basic realm="abc, Bearer realm=x`},
		err:    &errAt{0, 12, "unterminated"},
	},
	{
		name:   "a quoted-pair at the end of the field value",
		fields: []string{`Basic realm="abc\`},
		err:    &errAt{0, 16, "quoted-pair"},
	},
	{
		name:   "a parameter without '=' between parameters",
		fields: []string{`Digest realm="x", qop, nonce="y"`},
		err:    &errAt{0, 18, "no '='"},
	},
	{
		name:   "a parameter without '=' before a value",
		fields: []string{`Digest realm x`},
		err:    &errAt{0, 13, "no '='"},
	},
	{
		name:   "a parameter with '=' and no value",
		fields: []string{`Basic a=b, realm=`},
		err:    &errAt{0, 17, "no value"},
	},
	{
		name:   "a parameter with '=' and a comma for a value",
		fields: []string{`Basic a=b, realm=, charset=x`},
		err:    &errAt{0, 17, "no value"},
	},
	{
		name:   "a token68 followed by a parameter",
		fields: []string{`Negotiate abc==, realm="x"`},
		err:    &errAt{0, 17, "token68 followed by an auth-param"},
	},
	{
		name:   "a token68-like parameter without value followed by a parameter",
		fields: []string{`Basic realm=, charset=x`},
		err:    &errAt{0, 14, "token68 followed by an auth-param"},
	},
	{
		name:   "a token68 followed by more text",
		fields: []string{`Negotiate abc def`},
		err:    &errAt{0, 14, "no '='"},
	},
	{
		name:   "a duplicate parameter",
		fields: []string{`Basic realm="a", realm="b"`},
		err:    &errAt{0, 17, "twice"},
	},
	{
		name:   "a duplicate parameter in another case",
		fields: []string{`Basic realm="a", charset=x, REALM="b"`},
		err:    &errAt{0, 28, "twice"},
	},
	{
		name:   "an auth-param with no challenge before it",
		fields: []string{`realm="x"`},
		err:    &errAt{0, 0, "without a challenge"},
	},
	{
		name:   "an auth-param after a scheme without parameters",
		fields: []string{`Bearer, realm="x"`},
		want:   []Challenge{ch("Bearer")},
		err:    &errAt{0, 8, "without a challenge"},
	},
	{
		name:   "a parameter name missing before '='",
		fields: []string{`Basic realm="x", ="y"`},
		err:    &errAt{0, 17, "expected an auth-param name"},
	},
	{
		name:   "'=' where a scheme should be",
		fields: []string{`=x`},
		err:    &errAt{0, 0, "expected an auth-scheme"},
	},
	{
		name:   "a character outside tchar where a scheme should be",
		fields: []string{`@Basic realm="x"`},
		err:    &errAt{0, 0, "expected an auth-scheme"},
	},
	{
		name:   "a vertical tab is not whitespace",
		fields: []string{"\vBasic"},
		err:    &errAt{0, 0, "expected an auth-scheme"},
	},
	{
		name:   "a quote right after the scheme",
		fields: []string{`Basic"x"`},
		err:    &errAt{0, 5, "expected a space"},
	},
	{
		name:   "a semicolon after the scheme",
		fields: []string{`Basic; realm="x"`},
		err:    &errAt{0, 5, "expected a space"},
	},
	{
		name:   "a control character inside a quoted-string",
		fields: []string{"Basic realm=\"a\x01b\""},
		err:    &errAt{0, 14, "not allowed in a quoted-string"},
	},
	{
		name:   "DEL inside a quoted-string",
		fields: []string{"Basic realm=\"a\x7fb\""},
		err:    &errAt{0, 14, "not allowed in a quoted-string"},
	},
	{
		name:   "CR LF inside a quoted-string",
		fields: []string{"Basic realm=\"a\r\nb\""},
		err:    &errAt{0, 14, "not allowed in a quoted-string"},
	},
	{
		name:   "an escaped control character",
		fields: []string{"Basic realm=\"a\\\x00\""},
		err:    &errAt{0, 15, "cannot be escaped"},
	},
	{
		name:   "non-ASCII in a token value",
		fields: []string{`Basic realm=Grüße`},
		err:    &errAt{0, 14, "expected ','"},
	},
	{
		name:   "text after a quoted value",
		fields: []string{`Basic realm="x" y`},
		err:    &errAt{0, 16, "expected ','"},
	},
	{
		name:   "two quoted-strings in a row",
		fields: []string{`Basic realm="a""b"`},
		err:    &errAt{0, 15, "expected ','"},
	},
	{
		name:   "a second '=' after a token value",
		fields: []string{`Basic realm=x=y`},
		err:    &errAt{0, 13, "expected ','"},
	},
	{
		name:   "a token value followed by padding-like '='",
		fields: []string{`Newauth a=b==`},
		err:    &errAt{0, 11, "expected ','"},
	},
	{
		name:   "the challenges before an error in the same field come back",
		fields: []string{`Basic realm="x", Bearer realm="y`},
		want:   []Challenge{ch("Basic", "realm", "x")},
		err:    &errAt{0, 30, "unterminated"},
	},
	{
		name:   "the challenge holding the error does not come back",
		fields: []string{`Basic realm="x", error="y`},
		err:    &errAt{0, 23, "unterminated"},
	},
	{
		name:   "an error in a later field keeps the earlier fields' challenges",
		fields: []string{`Basic realm="x"`, `Bearer realm="y`},
		want:   []Challenge{ch("Basic", "realm", "x")},
		err:    &errAt{1, 13, "unterminated"},
	},
	{
		name:   "an error in one field does not stop the next one",
		fields: []string{`Bearer realm="y`, `Basic realm="x"`},
		want:   []Challenge{ch("Basic", "realm", "x")},
		err:    &errAt{0, 13, "unterminated"},
	},
	{
		name:   "the first of several errors is reported",
		fields: []string{`Basic realm="x", realm="y"`, `Bearer realm="y`},
		err:    &errAt{0, 17, "twice"},
	},
	{
		name:   "a NUL in a parameter name",
		fields: []string{"Basic re\x00alm=x"},
		err:    &errAt{0, 8, "no '='"},
	},
}

func allCases() []parseCase {
	cases := append([]parseCase{}, rfcCases...)
	cases = append(cases, grammarCases...)
	return append(cases, malformedCases...)
}

func TestParseChallenges(t *testing.T) {
	cases := allCases()
	require.GreaterOrEqual(t, len(cases), 80, "the issue asks for at least 80 cases")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChallenges(tc.fields...)
			assert.Equal(t, tc.want, got)
			if tc.err == nil {
				assert.NoError(t, err)
				return
			}
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.err.field, pe.Field, "field")
			assert.Equal(t, tc.err.offset, pe.Offset, "offset")
			assert.Contains(t, pe.Reason, tc.err.reason)
		})
	}
}

func TestChallengeIsComparesSchemeCaseInsensitively(t *testing.T) {
	chs, err := ParseChallenges(`bEaReR realm="x", DPoP algs=ES256`)
	require.NoError(t, err)
	require.Len(t, chs, 2)
	assert.True(t, chs[0].Is("Bearer"))
	assert.True(t, chs[0].Is("BEARER"))
	assert.False(t, chs[0].Is("Basic"))
	assert.True(t, chs[1].Is("dpop"))
}

func TestChallengeParamMatchesNameCaseInsensitively(t *testing.T) {
	chs, err := ParseChallenges(`Digest REALM="r", Nonce="n"`)
	require.NoError(t, err)
	require.Len(t, chs, 1)
	assert.Equal(t, "r", chs[0].Param("realm"))
	assert.Equal(t, "r", chs[0].Param("Realm"))
	assert.Equal(t, "n", chs[0].Param("NONCE"))
	assert.Equal(t, "", chs[0].Param("opaque"))
}

// String writes the canonical form: names in order, tokens bare, anything
// else quoted with '"' and '\' escaped (RFC 9110 §5.6.4).
func TestChallengeStringWritesCanonicalForm(t *testing.T) {
	cases := []struct {
		name string
		c    Challenge
		want string
	}{
		{"a scheme alone", ch("Bearer"), "Bearer"},
		{"a token68", t68("Negotiate", "abc=="), "Negotiate abc=="},
		{"parameters in name order", ch("Digest", "realm", "r", "algorithm", "MD5"), "Digest algorithm=MD5, realm=r"},
		{"a value with a space is quoted", ch("DPoP", "algs", "ES256 PS256"), `DPoP algs="ES256 PS256"`},
		{"an empty value is quoted", ch("Basic", "realm", ""), `Basic realm=""`},
		{"quotes and backslashes are escaped", ch("Basic", "realm", `a"b\c`), `Basic realm="a\"b\\c"`},
		{"a comma is quoted", ch("Digest", "qop", "auth,auth-int"), `Digest qop="auth,auth-int"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.c.String())
		})
	}
}

// Every challenge the table parses, written by String, parses back to itself.
func TestChallengeStringRoundTrips(t *testing.T) {
	for _, tc := range allCases() {
		got, _ := ParseChallenges(tc.fields...)
		for i, c := range got {
			again, err := ParseChallenges(c.String())
			require.NoError(t, err, "%s: challenge %d", tc.name, i)
			assert.Equal(t, []Challenge{c}, again, "%s: challenge %d", tc.name, i)
		}
	}
}

// ParseError is shown to users and logged; the grammar it reports on also
// carries credentials, so no part of the input may appear in it.
func TestParseErrorNeverContainsInput(t *testing.T) {
	const secret = "c2VjcmV0OnBhc3N3b3Jk"
	inputs := []string{
		`Basic ` + secret + ` trailing`,
		`Basic ` + secret + `==, realm="x"`,
		`Basic ` + secret + `=x=`,
		`Bearer realm="x", ` + secret + `, nonce="y"`,
		`Bearer ` + secret + `="a", ` + secret + `="b"`,
		`Bearer realm="` + secret,
		`Bearer realm="` + secret + "\x01\"",
		`Bearer realm="` + secret + `\`,
		`Bearer realm=` + secret + `"x"`,
		secret + `=x`,
		`Basic"` + secret + `"`,
		"Digest " + secret + "\x00",
		`Digest realm=` + secret + `, =` + secret,
	}
	for _, in := range inputs {
		_, err := ParseChallenges(in)
		require.Error(t, err, in)
		msg := err.Error()
		assert.NotContains(t, msg, secret[:4])
		assert.NotContains(t, msg, "c2V")
		// Letters and digits of the input are named by class, never shown.
		for _, s := range []string{"'c'", "'2'", "'V'", "'j'"} {
			assert.NotContains(t, msg, s)
		}
	}
}

func TestParseChallengesByteLimit(t *testing.T) {
	quoted := func(n int) string { // a field value of exactly n bytes
		return `Basic realm="` + strings.Repeat("a", n-len(`Basic realm=""`)) + `"`
	}

	chs, err := ParseChallenges(quoted(MaxChallengeBytes))
	require.NoError(t, err, "exactly the limit is accepted")
	assert.Len(t, chs, 1)

	chs, err = ParseChallenges(quoted(MaxChallengeBytes + 1))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Reason, "limit")
	assert.Nil(t, chs, "input over the limit is not parsed")

	half := quoted(MaxChallengeBytes/2 + 1)
	chs, err = ParseChallenges(half, half)
	require.ErrorAs(t, err, &pe, "the limit applies to all field values together")
	assert.Nil(t, chs)

	chs, err = ParseChallenges(strings.Repeat(",", 100_000))
	require.ErrorAs(t, err, &pe, "100k commas are refused unparsed")
	assert.Nil(t, chs)
}

func TestParseChallengesChallengeLimit(t *testing.T) {
	schemes := func(n int) string { return strings.TrimSuffix(strings.Repeat("X, ", n), ", ") }

	chs, err := ParseChallenges(schemes(MaxChallenges))
	require.NoError(t, err)
	assert.Len(t, chs, MaxChallenges)

	chs, err = ParseChallenges(schemes(MaxChallenges+1) + ",,")
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Len(t, chs, MaxChallenges, "the first MaxChallenges come back")
	assert.Equal(t, 0, pe.Field)
	assert.Equal(t, 3*MaxChallenges, pe.Offset, "the error is at the first challenge over the limit")
	assert.Contains(t, pe.Reason, "more than 256 challenges")

	chs, err = ParseChallenges(schemes(MaxChallenges), `Basic realm="x"`)
	require.ErrorAs(t, err, &pe, "the limit counts across field values")
	assert.Len(t, chs, MaxChallenges)
	assert.Equal(t, 1, pe.Field)
	assert.Equal(t, 0, pe.Offset)

	chs, err = ParseChallenges(schemes(MaxChallenges), " , ", "")
	require.NoError(t, err, "empty field values after the limit hold no challenge")
	assert.Len(t, chs, MaxChallenges)

	chs, err = ParseChallenges(strings.Repeat("X,", MaxChallengeBytes/2))
	require.ErrorAs(t, err, &pe, "a field full of schemes stops at the limit")
	assert.Len(t, chs, MaxChallenges)
}

// Hostile input up to the byte limit completes with a bounded result. This is
// no timing assertion: a quadratic parser would still pass it, only slowly;
// the fuzz test and TestParseChallengesMemoryIsLinear watch for that.
func TestParseChallengesPathologicalInputs(t *testing.T) {
	// fill repeats unit between prefix and suffix up to the byte limit.
	fill := func(prefix, unit, suffix string) string {
		n := (MaxChallengeBytes - len(prefix) - len(suffix)) / len(unit)
		return prefix + strings.Repeat(unit, n) + suffix
	}
	cases := []struct {
		name      string
		in        string
		wantErr   bool
		wantCount int
	}{
		{"commas up to the limit", fill("", ",", ""), false, 0},
		{"spaces and tabs up to the limit", fill("", " \t", ""), false, 0},
		{"a run of 'a=' after a scheme", fill("X ", "a=", ""), true, 0},
		{"a run of 'a=' alone", fill("", "a=", ""), true, 0},
		{"padding after a token68", fill("X a", "=", ""), false, 1},
		{"one long scheme", fill("", "X", ""), false, 1},
		{"one long token68", fill("X ", "a", ""), false, 1},
		{"one long quoted value", fill(`X a="`, "b", `"`), false, 1},
		{"one long unterminated quote", fill(`X a="`, "b", ""), true, 0},
		{"a run of quotes", fill("X a=", `"`, ""), true, 0},
		{"a run of escaped quotes", fill(`X a="`, `\"`, ""), true, 0},
		{"a run of escaped quotes, terminated", fill(`X a="`, `\"`, `"`), false, 1},
		{"many distinct parameters", distinctEscapedParams(MaxChallengeBytes), false, 1},
		{"one parameter repeated", fill("X ", "a=b, ", ""), true, 0},
		{"many lone tokens between commas", fill("", "a, ", ""), true, MaxChallenges},
		{"lone tokens after a parameter", fill("X a=b, ", "c, ", ""), true, MaxChallenges},
		{"empty elements before a parameter", fill("X ", ", ", "a=b"), false, 1},
		{"empty elements after a token68", fill("X abc", ", ", "Y"), false, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.LessOrEqual(t, len(tc.in), MaxChallengeBytes)
			require.Greater(t, len(tc.in), MaxChallengeBytes-16)
			chs, err := ParseChallenges(tc.in)
			if tc.wantErr {
				var pe *ParseError
				require.ErrorAs(t, err, &pe)
				assert.LessOrEqual(t, pe.Offset, len(tc.in))
			} else {
				assert.NoError(t, err)
			}
			assert.Len(t, chs, tc.wantCount)
		})
	}
}

// distinctEscapedParams is one challenge of nearly n bytes whose parameters
// have distinct names and short values that need unescaping.
func distinctEscapedParams(n int) string {
	var b strings.Builder
	b.WriteString("X ")
	for i := 0; ; i++ {
		elem := "p" + strconv.Itoa(i) + `="\""`
		if i > 0 {
			elem = ", " + elem
		}
		if b.Len()+len(elem) > n {
			return b.String()
		}
		b.WriteString(elem)
	}
}

// Unescaping must cost memory in proportion to the value, not to the rest of
// the field value: thousands of short escaped values in 64 KiB once cost
// hundreds of megabytes. Measured in bytes allocated, not in time.
func TestParseChallengesMemoryIsLinear(t *testing.T) {
	in := distinctEscapedParams(MaxChallengeBytes)
	chs, err := ParseChallenges(in)
	require.NoError(t, err)
	require.Len(t, chs, 1)
	require.Greater(t, len(chs[0].Params), 1000)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _ = ParseChallenges(in)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(64*len(in)), "bytes allocated for a %d-byte input", len(in))
}

// The result is the only allocation: the slice, one map per challenge with
// parameters, and nothing per parameter when values need no unescaping.
func TestParseChallengesAllocatesOnlyTheResult(t *testing.T) {
	mapAllocs := testing.AllocsPerRun(100, func() {
		m := make(map[string]string, 4)
		m["a"] = "b"
		sinkMap = m
	})
	allocs := testing.AllocsPerRun(100, func() {
		sinkChallenges, _ = ParseChallenges(benchmarkFields...)
	})
	const withParams = 5 // of the six challenges, all but Negotiate's token68
	assert.LessOrEqual(t, allocs, 1+withParams*mapAllocs)
}

var (
	sinkMap        map[string]string
	sinkChallenges []Challenge
)

func TestResponseChallenges(t *testing.T) {
	cases := []struct {
		name     string
		response string
		want     []Challenge
	}{
		{
			name:     "401 takes WWW-Authenticate in any case, every line in order",
			response: "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=\"a\"\r\nwww-authenticate: Bearer\r\nWWW-AUTHENTICATE: Negotiate\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n",
			want:     []Challenge{ch("Basic", "realm", "a"), ch("Bearer"), ch("Negotiate")},
		},
		{
			name:     "407 takes Proxy-Authenticate, not WWW-Authenticate",
			response: "HTTP/1.1 407 Proxy Authentication Required\r\nWWW-Authenticate: Basic realm=\"origin\"\r\nproxy-authenticate: Basic realm=\"proxy\"\r\nPROXY-AUTHENTICATE: Negotiate\r\n\r\n",
			want:     []Challenge{ch("Basic", "realm", "proxy"), ch("Negotiate")},
		},
		{
			name:     "403 takes WWW-Authenticate for a Bearer insufficient_scope (RFC 6750 §3.1)",
			response: "HTTP/1.1 403 Forbidden\r\nWww-Authenticate: Bearer error=\"insufficient_scope\", scope=\"write\"\r\n\r\n",
			want:     []Challenge{ch("Bearer", "error", "insufficient_scope", "scope", "write")},
		},
		{
			name:     "403 ignores Proxy-Authenticate",
			response: "HTTP/1.1 403 Forbidden\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n",
			want:     nil,
		},
		{
			name:     "401 without WWW-Authenticate has no challenges",
			response: "HTTP/1.1 401 Unauthorized\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n",
			want:     nil,
		},
		{
			name:     "407 without Proxy-Authenticate has no challenges",
			response: "HTTP/1.1 407 Proxy Authentication Required\r\nWWW-Authenticate: Basic realm=\"origin\"\r\n\r\n",
			want:     nil,
		},
		{
			name:     "a folded line is one field value",
			response: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\",\r\n  nonce=\"n\"\r\n\r\n",
			want:     []Challenge{ch("Digest", "realm", "r", "nonce", "n")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(tc.response)), nil)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := ResponseChallenges(resp)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResponseChallengesReportsMalformedFields(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}}
	resp.Header.Add("WWW-Authenticate", `Basic realm="x"`)
	resp.Header.Add("WWW-Authenticate", `Bearer realm="y`)
	got, err := ResponseChallenges(resp)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Field)
	assert.Equal(t, []Challenge{ch("Basic", "realm", "x")}, got)
}

func TestResponseChallengesOfNilResponse(t *testing.T) {
	got, err := ResponseChallenges(nil)
	assert.NoError(t, err)
	assert.Nil(t, got)
}

// FuzzParseChallenges holds the parser to its contract on any input. The
// input is split at '\n' into field values (a field value never holds one).
func FuzzParseChallenges(f *testing.F) {
	for _, tc := range allCases() {
		f.Add(strings.Join(tc.fields, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		fields := strings.Split(in, "\n")
		chs, err := ParseChallenges(fields...)

		require.LessOrEqual(t, len(chs), MaxChallenges)
		for _, c := range chs {
			require.True(t, isToken(c.Scheme), "scheme %q is not a token", c.Scheme)
			require.False(t, c.Token68 != "" && c.Params != nil, "a token68 and parameters")
			for name := range c.Params {
				require.True(t, isToken(name) && name == lowerASCII(name), "parameter name %q", name)
			}
			again, err := ParseChallenges(c.String())
			require.NoError(t, err, "String() = %q", c.String())
			require.Equal(t, []Challenge{c}, again, "String() = %q", c.String())
		}

		if err != nil {
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "error %T is not a *ParseError", err)
			require.GreaterOrEqual(t, pe.Field, 0)
			require.Less(t, pe.Field, len(fields))
			require.GreaterOrEqual(t, pe.Offset, 0)
			require.LessOrEqual(t, pe.Offset, len(fields[pe.Field]))
			require.NotEmpty(t, pe.Reason)
			return
		}

		// Challenge boundaries survive serialisation: the challenges written
		// back on one line parse to the same list.
		parts := make([]string, len(chs))
		for i, c := range chs {
			parts[i] = c.String()
		}
		if line := strings.Join(parts, ", "); len(line) <= MaxChallengeBytes {
			again, err := ParseChallenges(line)
			require.NoError(t, err, "line %q", line)
			require.Equal(t, chs, again, "line %q", line)
		}
	})
}

// A realistic mix: a Basic challenge, a Bearer error, a line of three Digest
// challenges (RFC 7616 §3.9) and a Negotiate token68 (RFC 4559 §4.2).
var benchmarkFields = []string{
	`Basic realm="WallyWorld", charset="UTF-8"`,
	`Bearer realm="example", error="invalid_token", error_description="The access token expired"`,
	digestSHA512 + ", " + digestSHA256 + ", " + digestMD5,
	`Negotiate oYG3MIG0oAMKAQChCwYJKoZIgvcSAQICooGfBIGcYIGZBgkqhkiG9xIBAgICAG+BiTCBhqADAgEFoQMCAQ+iejB4oAMCARKicQRvaLLwb2cD5qVPn6QJr+DXqFfs/vV0Tme4xKzbsYEHjBjRu0Jx+yvwBSNrBzKx1Xq6j1a==`,
}

func BenchmarkParseChallenges(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		chs, err := ParseChallenges(benchmarkFields...)
		if err != nil || len(chs) != 6 {
			b.Fatalf("got %d challenges, %v", len(chs), err)
		}
	}
}
