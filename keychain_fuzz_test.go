package reauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzNetrc reads arbitrary files as .netrc: no panic, and an error never
// quotes the file.
func FuzzNetrc(f *testing.F) {
	for _, tc := range netrcCases {
		f.Add(netrcFile(tc.file, "127.0.0.1", "80"))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(dir, "netrc")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		kc, err := NetrcKeychain(path)
		if err != nil {
			checkNotQuoted(t, err, body, path)
			return
		}
		if _, err := kc.Resolve(context.Background(), "https://127.0.0.1"); err != nil {
			checkNotQuoted(t, err, body, path)
		}
	})
}

// FuzzGOAUTHOutput parses arbitrary GOAUTH command output: no panic, every
// prefix is an https URL, and an error never quotes the output.
func FuzzGOAUTHOutput(f *testing.F) {
	f.Add("https://example.com\nhttps://example.net/api/\n\nAuthorization: Basic dG9rZW4=\n\n")
	f.Add("https://a\n\nX: y\nX: z\n\nhttps://b/\n\n\n")
	f.Fuzz(func(t *testing.T, out string) {
		sets, err := parseGOAUTHOutput([]byte(out))
		if err != nil {
			checkNotQuoted(t, err, out, "")
			return
		}
		for _, s := range sets {
			if !strings.HasPrefix(s.prefix, "https://") {
				t.Fatal("a prefix that is not https")
			}
		}
	})
}

// checkNotQuoted fails when err's text holds a line of input longer than a
// keyword (allowing for the path it names).
func checkNotQuoted(t *testing.T, err error, input, path string) {
	t.Helper()
	msg := strings.ReplaceAll(err.Error(), path, "")
	for _, line := range strings.Split(input, "\n") {
		if line = strings.TrimSpace(line); len(line) > 12 && strings.Contains(msg, line) {
			t.Fatal("the error quotes the input")
		}
	}
}
