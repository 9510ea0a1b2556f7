package mockserver

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseCredentials(t *testing.T) {
	ok := []struct {
		in      string
		want    credentials
		comment string
	}{
		{"Basic", credentials{Scheme: "Basic"}, "scheme only"},
		{"Basic YWxpY2U6d29uZGVybGFuZA==", credentials{Scheme: "Basic", Token68: "YWxpY2U6d29uZGVybGFuZA=="}, "token68 with padding"},
		{"Bearer   a.b-c_d~e+f/g", credentials{Scheme: "Bearer", Token68: "a.b-c_d~e+f/g"}, "several spaces"},
		{`Digest username="Mufasa", realm="a\"b\\c", nc=00000001`, credentials{Scheme: "Digest",
			Params: map[string]string{"username": "Mufasa", "realm": `a"b\c`, "nc": "00000001"}}, "quoted-pairs"},
		{"DPoP a = b ,, C=\"\"", credentials{Scheme: "DPoP", Params: map[string]string{"a": "b", "c": ""}}, "BWS, empty element, lower-cased name"},
		{"X x=\"J\xc3\xa4s\xc3\xb8n\"", credentials{Scheme: "X", Params: map[string]string{"x": "J\xc3\xa4s\xc3\xb8n"}}, "obs-text"},
	}
	for _, tt := range ok {
		c, err := parseCredentials(tt.in)
		if assert.Nil(t, err, tt.comment) {
			assert.Equal(t, tt.want, *c, tt.comment)
		}
	}
	bad := []struct{ in, says string }{
		{" Basic", "auth-scheme"},
		{"Basic\tabc", "not followed by a space"},
		{"Basic abc def", "no '='"},
		{`Digest a="x`, "does not end"},
		{`Digest a="x\`, "escapes nothing"},
		{"Digest a=\"x\x01\"", "control character"},
		{"Digest a=1, A=2", "given twice"},
		{"Digest b=1, a=", "no value"},
		{"Digest a=1 b=2", "expected ','"},
		{"Basic abc==, realm=x", "token68 followed by an auth-param"},
		{"Basic abc==, Bearer x", "2 credentials"},
		{"Bearer abc, ", "nothing following"},
		{"Digest a=1, Bearer x", "2 credentials"},
		{"Digest , ,", "token68 or auth-params"},
		{"Digest " + strings.Repeat("a=1,", 1) + paramsN(33), "more than 32"},
	}
	for _, tt := range bad {
		c, err := parseCredentials(tt.in)
		if assert.NotNil(t, err, "%q parses: %+v", tt.in, c) {
			assert.Contains(t, err.reason, tt.says, tt.in)
			assert.LessOrEqual(t, err.offset, len(tt.in))
		}
	}
}

func paramsN(n int) string {
	var b []string
	for i := range n {
		b = append(b, "p"+strings.Repeat("x", i)+"=1")
	}
	return strings.Join(b, ", ")
}

// FuzzParseCredentials: the parser never panics, reports offsets inside
// the field, and what it accepts survives being written back out and read
// again unchanged (so no two readings of one field differ).
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{"Basic YWxpY2U6d29uZGVybGFuZA==", `Digest username="a\"b", nc=00000001, qop=auth`, "Bearer x,", "DPoP a=b,,c=\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseCredentials(in)
		if err != nil {
			if err.offset < 0 || err.offset > len(in) {
				t.Fatalf("offset %d outside a field of %d bytes", err.offset, len(in))
			}
			return
		}
		if len(c.Params) > maxAuthParams || c.Scheme == "" || (c.Token68 != "" && c.Params != nil) {
			t.Fatalf("accepted an impossible shape: %+v", c)
		}
		out := c.Scheme
		if c.Token68 != "" {
			out += " " + c.Token68
		}
		var names []string
		for n := range c.Params {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			sep := ", "
			if i == 0 {
				sep = " "
			}
			out += sep + n + "=" + quote(c.Params[n])
		}
		again, err := parseCredentials(out)
		if err != nil {
			t.Fatalf("%q parsed, its rewrite %q did not: %s", in, out, err.reason)
		}
		assert.Equal(t, *c, *again)
	})
}
