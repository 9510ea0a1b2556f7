package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reauth/reauth"
	"github.com/reauth/reauth/mockserver"
)

func TestRunCostsTwoAndTwoThenOne(t *testing.T) {
	srv := mockserver.New(mockserver.DefaultConfig())
	defer srv.Close()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-url", srv.URL(), "-calls", "3"}, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 4)
	assert.True(t, strings.HasPrefix(lines[0], "DPoP key thumbprint (jkt): "))
	assert.Equal(t, []string{
		"call 1: 200, 2 token request(s), 2 resource request(s)",
		"call 2: 200, 0 token request(s), 1 resource request(s)",
		"call 3: 200, 0 token request(s), 1 resource request(s)",
	}, lines[1:])
	var st []int
	for _, r := range srv.RequestsTo("/dpop/nonce/resource") {
		st = append(st, r.Status)
	}
	assert.Equal(t, []int{401, 200, 200, 200}, st, "the server saw the same")
}

func TestRunWithAWrongSecretIsATokenError(t *testing.T) {
	err := run([]string{"-client-secret", "not-the-secret"}, &bytes.Buffer{})
	var te *reauth.TokenError
	require.ErrorAs(t, err, &te)
	assert.NotContains(t, err.Error(), "not-the-secret")
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-url", "ftp://x"}, {"-nonsense"}, {"extra"}, {"-calls", "0"}} {
		assert.Error(t, run(args, &bytes.Buffer{}), args)
	}
}

func TestHelpPrintsUsageAndExits0(t *testing.T) {
	var out, stderr bytes.Buffer
	assert.Equal(t, 0, exitCode(run([]string{"-h"}, &out), &stderr))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: dpop"))
	assert.Empty(t, stderr.String())
}
