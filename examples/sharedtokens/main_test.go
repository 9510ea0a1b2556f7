package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunFetchesOnceForAllClients(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-clients", "6", "-dir", filepath.Join(t.TempDir(), "tokens")}, &out))
	assert.Equal(t, "cold start: 6 clients read /oauth2/resource: 200\n"+
		"token fetches: 1\n"+
		"revoked the access token\n"+
		"after the revocation: 6 clients read /oauth2/resource: 200\n"+
		"token fetches: 2\n", out.String())
}

func TestRunRefusesBadClients(t *testing.T) {
	assert.ErrorContains(t, run([]string{"-clients", "0"}, &bytes.Buffer{}), "-clients must be 1 to 64")
}
