package reauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// netrcCases are .netrc files and what curl 7.88 sends for them to
// http://127.0.0.1 (user:password, or none), as recorded on Debian 12's
// curl; TestNetrcSameAsCurl checks them against the curl on the machine.
// Host names are written as HOST.
var netrcCases = []struct {
	name, file string
	want       string // "user:password", or "" for no Authorization
}{
	{"one line", "machine HOST login u password p\n", "u:p"},
	{"over lines", "machine HOST\nlogin u\n password p\n", "u:p"},
	{"tabs and CRLF", "machine\tHOST\r\nlogin\tu\r\npassword\tp\r\n", "u:p"},
	{"no final newline", "machine HOST login u password p", "u:p"},
	{"keywords in any case", "MACHINE HOST LOGIN u PASSWORD p\n", "u:p"},
	{"password before login", "machine HOST password p login u\n", "u:p"},
	{"account skipped", "machine HOST account a login u password p\n", "u:p"},
	{"quoted with escapes", "machine HOST login \"u s\" password \"p\\\"q\\\\r\\x\"\n", "u s:p\"q\\rx"},
	{"quoted host", "machine \"HOST\" login u password p\n", "u:p"},
	{"byte after a closing quote skipped", "machine HOST login \"u\"password q\n", "u:"},
	{"byte after a closing quote skipped, then a keyword", "machine HOST login \"u\"xpassword q\n", "u:q"},
	{"space before a newline ends an empty token", "machine HOST login \nu password p\n", ":p"},
	{"an empty token outside a keyword is skipped", "machine HOST login u \npassword p\n", "u:p"},
	{"first matching machine wins", "machine HOST login u password p\nmachine HOST login v password q\n", "u:p"},
	{"another machine does not match", "machine other login o password op\n", ""},
	{"machine with a port does not match", "machine HOST:PORT login u password p\n", ""},
	{"default after others", "machine other login o password op\ndefault login d password dp\n", "d:dp"},
	{"default first wins", "default login d password dp\nmachine HOST login u password p\n", "d:dp"},
	{"default over lines", "default\nlogin d password dp\n", "d:dp"},
	{"login only", "machine HOST login u\n", "u:"},
	{"password only", "machine HOST password p\n", ":p"},
	{"empty quoted login", "machine HOST login \"\" password p\n", ":p"},
	{"machine with nothing", "machine HOST\n", ""},
	{"an entry without both goes on to the next", "machine HOST password p\nmachine HOST login u password q\n", "u:q"},
	{"comment line", "# machine HOST login c password cp\nmachine HOST login u password p\n", "u:p"},
	{"comment after a token", "machine HOST login u # password p\n", "u:"},
	{"hash inside a token", "machine HOST login u password p#x\n", "u:p#x"},
	{"macdef skipped to the blank line", "macdef init\nmachine HOST login m password mp\n\nmachine HOST login u password p\n", "u:p"},
	{"macdef: a line of spaces is not blank", "macdef x\n  \nmachine HOST login u password p\n\nmachine HOST login v password q\n", "v:q"},
	{"macdef ends at a CRLF blank line", "macdef x\r\n\r\nmachine HOST login u password p\n", "u:p"},
	{"macdef inside an entry is not a macdef", "machine HOST macdef x\nlogin u password p\n\n", "u:p"},
	{"CR ends an empty token", "machine HOST login u\r\npassword\r\np\r\n", "u:"},
	{"keywords after a mismatch are skipped", "machine other login machine password HOST login u password p\n", ""},
	{"form feed ends a token", "machine HOST login u password p\fq\n", "u:p"},
	{"UTF-8 password", "machine HOST login u password pä€\n", "u:pä€"},
}

func writeNetrc(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netrc")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// netrcFile fills in the host and port of the origin a case is read for.
func netrcFile(file, host, port string) string {
	return strings.NewReplacer("HOST", host, "PORT", port).Replace(file)
}

func TestNetrcReadsAsCurl(t *testing.T) {
	for _, tc := range netrcCases {
		t.Run(tc.name, func(t *testing.T) {
			kc, err := NetrcKeychain(writeNetrc(t, netrcFile(tc.file, "127.0.0.1", "8080")))
			require.NoError(t, err)
			n := kc.(*netrcKeychain)
			m, err := n.lookup("127.0.0.1", false)
			require.NoError(t, err)
			got := ""
			if m.found {
				got = m.login + ":" + m.password
			}
			assert.True(t, got == tc.want, "the login read differs from curl's") // values not printed

			c, err := kc.Resolve(context.Background(), "http://127.0.0.1:8080")
			require.NoError(t, err)
			assert.Equal(t, tc.want != "", c != nil)
		})
	}
}

func TestNetrcBadFileNamesFileAndLineNotSecret(t *testing.T) {
	for name, body := range map[string]string{
		"unclosed quote":         "machine h login u\npassword \"s3cr3t\n",
		"escape at end of quote": "machine h login u\npassword \"s3cr3t\\\n",
		"NUL byte":               "machine h login u\npassword s3cr3t\x00\n",
		"long line":              "machine h login u\npassword s3cr3t" + strings.Repeat("x", 5000) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := writeNetrc(t, body)
			_, err := NetrcKeychain(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path+" line 2")
			assert.NotContains(t, err.Error(), "s3cr3t")
			assert.Equal(t, 1, strings.Count(err.Error(), "reauth: "))
		})
	}
}

func TestNetrcPathDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("NETRC", "")

	kc, err := NetrcKeychain("")
	require.NoError(t, err, "a missing default file is an empty keychain")
	c, err := kc.Resolve(context.Background(), "https://h")
	require.NoError(t, err)
	assert.Nil(t, c)

	require.NoError(t, os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine h login u password p\n"), 0o600))
	kc, err = NetrcKeychain("")
	require.NoError(t, err)
	c, err = kc.Resolve(context.Background(), "https://H:8443")
	require.NoError(t, err)
	assert.NotNil(t, c, "~/.netrc is read; the host matches in any case and whatever the port")

	t.Setenv("NETRC", filepath.Join(home, "elsewhere"))
	_, err = NetrcKeychain("")
	assert.NoError(t, err, "a missing $NETRC file reads as empty, as the go command reads it")

	_, err = NetrcKeychain(filepath.Join(home, "missing"))
	assert.ErrorContains(t, err, "missing", "a named file that is missing is an error")
}

func TestNetrcCredentialsAreBasicUpFront(t *testing.T) {
	kc, err := NetrcKeychain(writeNetrc(t, "machine 127.0.0.1 login u password p\n"))
	require.NoError(t, err)
	srv, seen := recordingServer(t)
	c, err := kc.Resolve(context.Background(), srv.URL)
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, basicFieldValue("u", "p"), sendWith(t, srv.URL, c, seen), "sent with the first request")
}
