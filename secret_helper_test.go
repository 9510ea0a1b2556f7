package reauth

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// Every secret the tests plant contains "SENTINEL", so that one search finds
// all of them in any text. plantedEncoded lists their encoded forms, which
// do not (a Basic token68, a URL-escaped password); tests outside the
// package add theirs with PlantEncoded, from an init function.
var plantedEncoded = []string{
	strings.TrimPrefix(basicValue, "Basic "),
	strings.TrimPrefix(proxyBasic, "Basic "),
	url.QueryEscape(testPassword),
}

// PlantEncoded adds encoded forms of secrets that the tests of package
// reauth_test plant. Call it from an init function only.
func PlantEncoded(forms ...string) { plantedEncoded = append(plantedEncoded, forms...) }

// findSecret names the planted secret s holds ("secret #i"), or returns "".
// It never returns the secret.
func findSecret(s string) string {
	if strings.Contains(s, "SENTINEL") {
		return "a SENTINEL secret"
	}
	for i, form := range plantedEncoded {
		if strings.Contains(s, form) {
			return "encoded secret #" + strconv.Itoa(i)
		}
	}
	return ""
}

// assertNoSecret fails when the text s, described by what, holds a planted
// secret. It is the one such assertion of the tests, and it never prints s
// or the secret.
func assertNoSecret(t testing.TB, what, s string) {
	t.Helper()
	if found := findSecret(s); found != "" {
		t.Errorf("%s holds %s", what, found)
	}
}

// AssertNoSecret and FindSecret are assertNoSecret and findSecret for the
// tests of package reauth_test.
var (
	AssertNoSecret = assertNoSecret
	FindSecret     = findSecret
)
