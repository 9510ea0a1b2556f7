package reauth

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Limits on the work [ParseChallenges] does, so that a hostile server cannot
// make a client spend unbounded time or memory on its headers.
const (
	// MaxChallengeBytes is the largest total size, over all field values, that
	// ParseChallenges accepts.
	MaxChallengeBytes = 64 << 10
	// MaxChallenges is the largest number of challenges ParseChallenges returns.
	MaxChallenges = 256
)

// Challenge is one challenge of a WWW-Authenticate or Proxy-Authenticate
// field (RFC 9110 §11.3): an auth-scheme with either a token68 or a list of
// auth-params.
type Challenge struct {
	Scheme  string            // auth-scheme as sent; compared case-insensitively
	Token68 string            // "" unless the challenge carries a token68
	Params  map[string]string // auth-params: names lower-cased, values unquoted and unescaped
}

// Is reports whether the challenge's auth-scheme is scheme, compared
// case-insensitively as RFC 9110 §11.1 requires.
func (c Challenge) Is(scheme string) bool { return strings.EqualFold(c.Scheme, scheme) }

// Param returns the auth-param called name (matched case-insensitively), or ""
// when the challenge does not carry it.
func (c Challenge) Param(name string) string {
	if v, ok := c.Params[name]; ok {
		return v
	}
	return c.Params[strings.ToLower(name)]
}

// String serialises the challenge as a field value that [ParseChallenges]
// parses back to an equal challenge. Auth-params are written in name order,
// values quoted unless they are a token, with '"' and '\' escaped.
//
// The round trip holds for every challenge ParseChallenges returns. A
// challenge built by hand round-trips when it could have been parsed: a token
// scheme, a token68 or lower-case token parameter names (not both), and
// values without control characters other than HTAB, which no quoted-string
// can carry (RFC 9110 §5.6.4).
func (c Challenge) String() string {
	b := append([]byte(nil), c.Scheme...)
	if c.Token68 != "" {
		b = append(b, ' ')
		b = append(b, c.Token68...)
		return string(b)
	}
	for i, name := range slices.Sorted(maps.Keys(c.Params)) {
		if i == 0 {
			b = append(b, ' ')
		} else {
			b = append(b, ", "...)
		}
		b = append(b, name...)
		b = append(b, '=')
		b = appendParamValue(b, c.Params[name])
	}
	return string(b)
}

// appendParamValue appends v as a token when it is one, else as a
// quoted-string (RFC 9110 §5.6.4).
func appendParamValue(b []byte, v string) []byte {
	if isToken(v) {
		return append(b, v...)
	}
	return appendQuotedString(b, v)
}

// appendQuotedString appends v as a quoted-string, escaping '"' and '\'
// (RFC 9110 §5.6.4).
func appendQuotedString(b []byte, v string) []byte {
	b = append(b, '"')
	start := 0 // v[start:] is not yet appended; runs are appended whole
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b = append(b, v[start:i]...)
			b = append(b, '\\')
			start = i
		}
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// ParseError reports a field value that does not follow the challenge grammar
// of RFC 9110 §11. It names the field value and byte offset, never the text
// there: the same grammar carries credentials in Authorization fields, so no
// token, parameter name or value, and no letter or digit of the input, is
// ever part of the message.
type ParseError struct {
	Field  int    // index of the field value among those passed to ParseChallenges
	Offset int    // byte offset within that field value (0 when the total size is over the limit)
	Reason string // what was wrong
}

// Error says which field value broke the grammar, where, and how, without
// quoting it.
func (e *ParseError) Error() string {
	return fmt.Sprintf("reauth: malformed challenge in field value %d at byte %d: %s", e.Field, e.Offset, e.Reason)
}

// ParseChallenges parses the field values of every WWW-Authenticate (or
// Proxy-Authenticate) field line of a response and returns their challenges in
// order. The grammar is RFC 9110 §11.2–§11.3 with the list rules of §5.6.1:
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// Several challenges may share a field line; a challenge may have no
// parameters ("Bearer, DPoP algs=\"ES256\"" is two challenges). A token68 is
// told from an auth-param by looking ahead: a run of token68 characters and
// '=' padding followed by the end of the element is a token68.
//
// Leniency, beyond the grammar's own optional whitespace:
//   - empty list elements and runs of commas are skipped (§5.6.1), also at the
//     start of a challenge's parameters ("Bearer , realm=\"x\"");
//   - spaces and tabs are both accepted wherever whitespace is, including the
//     1*SP after the auth-scheme;
//   - an error in one field value does not stop the parsing of the next one.
//
// Auth-scheme case is kept as sent; auth-param names are lower-cased; values
// are kept exactly as sent after unquoting.
//
// Malformed input (an unterminated quoted-string, an auth-param without '=',
// a token68 followed by an auth-param, a parameter name given twice in one
// challenge, a character outside the grammar) gives a [*ParseError] for the
// first such place; the challenges that parsed cleanly are returned with it so
// that a caller may still use them. Input over [MaxChallengeBytes] in total is
// refused without parsing, and parsing stops after [MaxChallenges]
// challenges, with an error if more follow. Work is linear in the input.
func ParseChallenges(fieldValues ...string) ([]Challenge, error) {
	total := 0
	for _, v := range fieldValues {
		total += len(v)
	}
	if total > MaxChallengeBytes {
		return nil, &ParseError{Reason: fmt.Sprintf("field values total %d bytes, over the %d-byte limit", total, MaxChallengeBytes)}
	}
	// The challenges are collected on the stack and copied into a result
	// of their number: one allocation for the slice, without a counting
	// pass over the input. Only more than len(buf) challenges cost more.
	var (
		buf      [8]Challenge
		out      = buf[:0]
		firstErr error
	)
	for i, v := range fieldValues {
		p := challengeParser{s: v, field: i}
		var err error
		out, err = p.parse(out)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if len(out) == 0 {
		return nil, firstErr
	}
	return slices.Clone(out), firstErr
}

// ResponseChallenges returns the challenges of resp: those of its
// Proxy-Authenticate fields for a 407, of its WWW-Authenticate fields
// otherwise (401, and 403 or 400 for Bearer errors, RFC 6750 §3). Field names
// are matched case-insensitively, as net/http canonicalises them on receipt.
func ResponseChallenges(resp *http.Response) ([]Challenge, error) {
	if resp == nil {
		return nil, nil
	}
	// Looked up as net/http stores field names, in textproto's canonical
	// form: Header.Values would canonicalise (and, for "WWW-Authenticate",
	// allocate) on every call.
	field := "Www-Authenticate"
	if resp.StatusCode == http.StatusProxyAuthRequired {
		field = "Proxy-Authenticate"
	}
	values := resp.Header[field]
	if len(values) == 0 {
		return nil, nil
	}
	return ParseChallenges(values...)
}

type challengeParser struct {
	s     string
	pos   int
	field int
}

// fail returns a ParseError at offset. Callers pass a fixed reason, or one
// formatted from bytes through describeByte, never a piece of the input.
func (p *challengeParser) fail(offset int, format string, args ...any) error {
	return &ParseError{Field: p.field, Offset: offset, Reason: fmt.Sprintf(format, args...)}
}

// parse appends the challenges of one field value to out. It stops with an
// error once out holds MaxChallenges and the field value holds more.
func (p *challengeParser) parse(out []Challenge) ([]Challenge, error) {
	for {
		p.skipListSeparators()
		if p.pos == len(p.s) {
			return out, nil
		}
		if len(out) >= MaxChallenges {
			return out, p.fail(p.pos, "more than %d challenges", MaxChallenges)
		}
		c, err := p.challenge()
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

// challenge parses one challenge starting at an auth-scheme and stops at the
// comma that ends it, or at the end of the field value.
func (p *challengeParser) challenge() (Challenge, error) {
	start := p.pos
	scheme := p.token()
	if scheme == "" {
		return Challenge{}, p.fail(p.pos, "expected an auth-scheme, found %s", p.describe(p.pos))
	}
	if p.peekParamAfter(start) {
		return Challenge{}, p.fail(start, "auth-param without a challenge (a parameter before it may lack '=')")
	}
	c := Challenge{Scheme: scheme}
	if p.pos == len(p.s) || p.s[p.pos] == ',' {
		return c, nil
	}
	if !isWS(p.s[p.pos]) {
		return Challenge{}, p.fail(p.pos, "expected a space after the auth-scheme, found %s", p.describe(p.pos))
	}
	p.skipWS()
	if p.pos == len(p.s) {
		return c, nil
	}
	if p.s[p.pos] == ',' {
		// "Bearer , realm=x": #auth-param may begin with empty elements
		// (RFC 9110 §5.6.1), so a parameter after them is still Bearer's.
		save := p.pos
		p.skipListSeparators()
		if p.pos == len(p.s) || !p.peekParamAfter(p.pos) {
			p.pos = save
			return c, nil
		}
		return c, p.params(&c)
	}
	if t68, ok := p.token68(); ok {
		c.Token68 = t68
		// A token68 ends its challenge: what follows must be a new challenge.
		save := p.pos
		p.skipListSeparators()
		if p.pos < len(p.s) && p.peekParamAfter(p.pos) {
			return Challenge{}, p.fail(p.pos, "token68 followed by an auth-param")
		}
		p.pos = save
		return c, nil
	}
	return c, p.params(&c)
}

// params parses the #auth-param list of a challenge. It stops before the
// auth-scheme of a following challenge.
func (p *challengeParser) params(c *Challenge) error {
	c.Params = make(map[string]string, 4)
	for {
		nameStart := p.pos
		name := p.token()
		if name == "" {
			return p.fail(p.pos, "expected an auth-param name, found %s", p.describe(p.pos))
		}
		p.skipWS()
		if p.pos == len(p.s) || p.s[p.pos] != '=' {
			return p.fail(p.pos, "auth-param has no '=', found %s", p.describe(p.pos))
		}
		p.pos++
		p.skipWS()
		value, err := p.paramValue()
		if err != nil {
			return err
		}
		// A name given twice leaves the map's size unchanged: one map
		// operation per auth-param instead of a lookup and an insert. The
		// challenge is dropped with the error, overwritten value and all.
		n := len(c.Params)
		c.Params[lowerASCII(name)] = value
		if len(c.Params) == n {
			return p.fail(nameStart, "auth-param name given twice in one challenge (RFC 9110 §11.2)")
		}

		p.skipWS()
		if p.pos == len(p.s) {
			return nil
		}
		if p.s[p.pos] != ',' {
			return p.fail(p.pos, "expected ',' after an auth-param value, found %s", p.describe(p.pos))
		}
		save := p.pos
		p.skipListSeparators()
		if p.pos == len(p.s) {
			return nil
		}
		if !p.peekParamAfter(p.pos) {
			if p.bareTokenBeforeParam(p.pos) {
				// "realm=x, qop, nonce=y": qop is a parameter that lost its '='.
				return p.fail(p.pos, "auth-param has no '=' (a lone token between auth-params)")
			}
			// The next element begins a new challenge.
			p.pos = save
			return nil
		}
	}
}

// paramValue parses a token or a quoted-string.
func (p *challengeParser) paramValue() (string, error) {
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		return p.quotedString()
	}
	v := p.token()
	if v == "" {
		return "", p.fail(p.pos, "auth-param has no value, found %s", p.describe(p.pos))
	}
	return v, nil
}

// quotedString parses a quoted-string (RFC 9110 §5.6.4) at p.pos and returns
// its content with quoted-pairs resolved. Without escapes the result is a
// substring of the input and costs no allocation; with them, one allocation
// of the exact size.
func (p *challengeParser) quotedString() (string, error) {
	open := p.pos
	start := open + 1
	escapes := 0
	for i := start; i < len(p.s); i++ {
		// Runs of plain qdtext, nearly the whole value, at one table
		// lookup a byte.
		for i < len(p.s) && qdtextTable[p.s[i]] {
			i++
		}
		if i == len(p.s) {
			break
		}
		switch ch := p.s[i]; {
		case ch == '"':
			p.pos = i + 1
			if escapes == 0 {
				return p.s[start:i], nil
			}
			return unescapeQuotedPairs(p.s[start:i], escapes), nil
		case ch == '\\':
			if i+1 == len(p.s) {
				return "", p.fail(i, "quoted-pair at the end of the field value")
			}
			if !isQuotedPairChar(p.s[i+1]) {
				return "", p.fail(i+1, "%s cannot be escaped in a quoted-string", describeByte(p.s[i+1]))
			}
			escapes++
			i++
		default:
			return "", p.fail(i, "%s not allowed in a quoted-string", describeByte(ch))
		}
	}
	return "", p.fail(open, "unterminated quoted-string")
}

// unescapeQuotedPairs resolves the quoted-pairs in the content of a
// quoted-string that quotedString has already checked and found escapes in.
func unescapeQuotedPairs(s string, escapes int) string {
	var b strings.Builder
	b.Grow(len(s) - escapes)
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// token68 reads a token68 (RFC 9110 §11.2) at p.pos if one stands there and
// ends the list element; otherwise it leaves p.pos alone.
func (p *challengeParser) token68() (string, bool) {
	i := p.pos
	for i < len(p.s) && isToken68Char(p.s[i]) {
		i++
	}
	if i == p.pos {
		return "", false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	end := i
	for i < len(p.s) && isWS(p.s[i]) {
		i++
	}
	if i < len(p.s) && p.s[i] != ',' {
		return "", false
	}
	t := p.s[p.pos:end]
	p.pos = end
	return t, true
}

// peekParamAfter reports whether the list element at i is an auth-param
// (token BWS "="), not the start of a challenge.
func (p *challengeParser) peekParamAfter(i int) bool {
	for i < len(p.s) && isTchar(p.s[i]) {
		i++
	}
	for i < len(p.s) && isWS(p.s[i]) {
		i++
	}
	return i < len(p.s) && p.s[i] == '='
}

// bareTokenBeforeParam reports whether the list element at i is a lone token
// followed by an auth-param: that token can only be an auth-param without '='.
func (p *challengeParser) bareTokenBeforeParam(i int) bool {
	start := i
	for i < len(p.s) && isTchar(p.s[i]) {
		i++
	}
	if i == start {
		return false
	}
	for i < len(p.s) && isWS(p.s[i]) {
		i++
	}
	if i == len(p.s) || p.s[i] != ',' {
		return false
	}
	for i < len(p.s) && (isWS(p.s[i]) || p.s[i] == ',') {
		i++
	}
	return i < len(p.s) && p.peekParamAfter(i)
}

// The scanning loops below count in a local variable and store p.pos once:
// the compiler cannot keep a field behind a pointer in a register.

func (p *challengeParser) token() string {
	start, i := p.pos, p.pos
	for i < len(p.s) && isTchar(p.s[i]) {
		i++
	}
	p.pos = i
	return p.s[start:i]
}

func (p *challengeParser) skipWS() {
	i := p.pos
	for i < len(p.s) && isWS(p.s[i]) {
		i++
	}
	p.pos = i
}

// skipListSeparators skips OWS and any number of commas: empty list elements
// are allowed (RFC 9110 §5.6.1).
func (p *challengeParser) skipListSeparators() {
	i := p.pos
	for i < len(p.s) && (isWS(p.s[i]) || p.s[i] == ',') {
		i++
	}
	p.pos = i
}

func (p *challengeParser) describe(i int) string {
	if i >= len(p.s) {
		return "the end of the field value"
	}
	return describeByte(p.s[i])
}

// describeByte names a byte for an error message by its class, showing only
// punctuation, which is grammar: letters and digits may belong to a
// credential (ParseError's contract), and other bytes are shown by code.
func describeByte(c byte) string {
	switch {
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return "a letter"
	case c >= '0' && c <= '9':
		return "a digit"
	case c > 0x20 && c < 0x7f:
		return fmt.Sprintf("%q", rune(c))
	case c == ' ':
		return "a space"
	case c == '\t':
		return "a tab"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return tcharTable[c]
}

// tcharTable covers every byte, so that a lookup needs no bounds check.
var tcharTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// isToken68Char reports whether c may appear in a token68 before its '='
// padding (RFC 9110 §11.2).
func isToken68Char(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isQdtext reports whether c may appear unescaped in a quoted-string:
// HTAB, SP, and visible characters other than '"' and '\' (obs-text included).
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c != 0x7f
}

// qdtextTable is isQdtext for every byte, for the scanning loop.
var qdtextTable = func() (t [256]bool) {
	for c := range t {
		t[c] = isQdtext(byte(c))
	}
	return t
}()

// isQuotedPairChar reports whether c may follow '\' in a quoted-pair.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c >= 0x20 && c != 0x7f
}

// lowerASCII lower-cases an ASCII token, returning s itself when it has no
// upper-case letter, so that the common case allocates nothing.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
