package mockserver

import "strings"

// maxAuthParams bounds the auth-params of one credentials field; Digest,
// the most talkative scheme, sends about a dozen.
const maxAuthParams = 32

// syntaxError is where and why an Authorization field does not parse.
// reason never quotes the field: it may hold a secret.
type syntaxError struct {
	offset int
	reason string
}

// parseCredentials reads one credentials value (RFC 9110 §11.4):
//
//	credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//	auth-param  = token BWS "=" BWS ( token / quoted-string )
//
// It is strict where the grammar is: an auth-param named twice, a
// quoted-string that does not end or escapes nothing, a control character,
// a second credentials after a comma, and more than [maxAuthParams]
// auth-params are errors. Empty list elements ("a=1, , b=2") are accepted,
// as RFC 9110 §5.6.1 asks of recipients. v has no leading or trailing
// whitespace; its length is bounded by the caller.
func parseCredentials(v string) (*credentials, *syntaxError) {
	i := 0
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	if i == 0 {
		return nil, &syntaxError{0, "the field does not start with an auth-scheme (a token)"}
	}
	c := &credentials{Scheme: v[:i]}
	if i == len(v) {
		return c, nil
	}
	if v[i] != ' ' {
		return nil, &syntaxError{i, "the auth-scheme is not followed by a space"}
	}
	for i < len(v) && v[i] == ' ' {
		i++
	}
	rest := v[i:]
	if n := token68Len(rest); n > 0 {
		after := skipOWS(rest, n)
		switch {
		case after == len(rest):
			c.Token68 = rest[:n]
			return c, nil
		case rest[after] == ',':
			next := skipOWS(rest, after+1)
			if next == len(rest) {
				return nil, &syntaxError{i + after, "a comma after the token68 with nothing following it"}
			}
			j := next
			for j < len(rest) && isTchar(rest[j]) {
				j++
			}
			if j > next && skipOWS(rest, j) < len(rest) && rest[skipOWS(rest, j)] == '=' {
				return nil, &syntaxError{i + next, "a token68 followed by an auth-param; credentials carry one or the other"}
			}
			return nil, &syntaxError{i + next, "the field carries 2 credentials after a comma; it must carry one"}
		}
	}
	params, err := parseAuthParams(rest, i)
	if err != nil {
		return nil, err
	}
	c.Params = params
	return c, nil
}

// parseAuthParams reads #auth-param from s, which starts at offset base of
// the field.
func parseAuthParams(s string, base int) (map[string]string, *syntaxError) {
	params := map[string]string{}
	i := 0
	fail := func(reason string) (map[string]string, *syntaxError) {
		return nil, &syntaxError{base + i, reason}
	}
	for {
		i = skipOWS(s, i)
		if i == len(s) {
			break
		}
		if s[i] == ',' { // an empty list element
			i++
			continue
		}
		start := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == start {
			return fail("expected an auth-param name (a token)")
		}
		name := strings.ToLower(s[start:i])
		i = skipOWS(s, i)
		if i == len(s) || s[i] != '=' {
			if len(params) > 0 && s[i-1] == ' ' && i < len(s) && s[i] != ',' {
				return fail("the field carries 2 credentials (an auth-scheme after a comma); it must carry one")
			}
			return fail("an auth-param has no '=' (auth-param = token \"=\" ( token / quoted-string ))")
		}
		i = skipOWS(s, i+1)
		var value string
		switch {
		case i < len(s) && s[i] == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) && !closed {
				switch ch := s[i]; {
				case ch == '"':
					closed = true
				case ch == '\\':
					i++
					if i == len(s) || !isQuotedPairChar(s[i]) {
						return fail("a backslash in a quoted-string escapes nothing it may escape")
					}
					b.WriteByte(s[i])
				case isQdtext(ch):
					b.WriteByte(ch)
				default:
					return fail("a control character in a quoted-string")
				}
				i++
			}
			if !closed {
				return fail("a quoted-string does not end")
			}
			value = b.String()
		default:
			vs := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			if i == vs {
				return fail("an auth-param has no value (a token or a quoted-string)")
			}
			value = s[vs:i]
		}
		if _, dup := params[name]; dup {
			return fail("an auth-param is given twice (RFC 9110 §11.2: each name at most once)")
		}
		if len(params) == maxAuthParams {
			return fail("more than 32 auth-params")
		}
		params[name] = value
		i = skipOWS(s, i)
		if i < len(s) && s[i] != ',' {
			return fail("expected ',' between auth-params")
		}
	}
	if len(params) == 0 {
		return nil, &syntaxError{base, "expected a token68 or auth-params after the auth-scheme"}
	}
	return params, nil
}

// token68Len returns the length of the token68 at the start of s, 0 if none.
func token68Len(s string) int {
	i := 0
	for i < len(s) && isToken68Char(s[i]) {
		i++
	}
	if i == 0 {
		return 0
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i
}

func isToken68Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isTchar reports whether c may be in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 §5.6.4).
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar: HTAB / SP / VCHAR / obs-text.
func isQuotedPairChar(c byte) bool { return c == '\t' || 0x20 <= c && c != 0x7f }

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}
