package reauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/reauth/reauth"
)

// One process fetches a token under the store's lease and stores it; the
// others read it instead of asking the token endpoint.
func ExampleNewFileStore() {
	dir, err := os.MkdirTemp("", "reauth-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := reauth.NewFileStore(filepath.Join(dir, "tokens"))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	key := reauth.StoreKey(reauth.TokenIdentity{
		TokenURL: "https://idp.example/oauth/token", ClientID: "my-client", Scopes: []string{"read"},
	})

	tok, err := store.Load(ctx, key)
	if errors.Is(err, reauth.ErrStoreMiss) {
		holder := reauth.NewLeaseHolder()
		if ok, err := store.AcquireLease(ctx, key, holder, 30*time.Second); err == nil && ok {
			// Fetch the token from the endpoint here; then store it, unless
			// another process stored one since tok was read.
			fetched := reauth.StoredToken{AccessToken: "…", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
			_, swapped, err := store.CompareAndSwap(ctx, key, tok.Version, fetched)
			fmt.Println("stored:", swapped, err)
			_ = store.ReleaseLease(ctx, key, holder)
		}
	}
	tok, err = store.Load(ctx, key)
	fmt.Println("loaded:", tok.TokenType, err)
	// Output:
	// stored: true <nil>
	// loaded: Bearer <nil>
}
