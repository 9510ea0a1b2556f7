package reauth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// TokenStore is a token cache shared by processes: the replicas of a
// service, or the runs of a CLI. It holds one [StoredToken] per key (see
// [StoreKey]), a lease per key so that one process fetches a token while the
// others wait for it, and a cool-down per key so that a token endpoint that
// asked for a pause (429 or 503 with Retry-After, or repeated 5xx) gets it
// from the whole fleet at once.
//
// Every method takes a context and returns once it ends; a store that cannot
// be reached returns an error, never blocks without bound. Implementations
// are safe for concurrent use by goroutines and by processes.
//
// Entries change only through [TokenStore.CompareAndSwap], so a writer that
// lost a race never overwrites a newer token, and a 401 invalid_token
// invalidates the stored token only if the store still holds it (see
// [InvalidateStoredToken]). Versions only grow for a key, across deletions of
// the key too (see [NextStoredVersion]).
//
// A store returns entries it cannot read (corrupt, written for another key
// or by something else, sealed with a key it does not hold) as an error that
// matches [ErrStoreEntryInvalid] or [ErrStoreWrongKey], with the entry's
// version when it can tell it (else 0); callers ignore such an entry (they
// may overwrite it with CompareAndSwap from that version) and report it as
// an event.
type TokenStore interface {
	// Load returns the entry stored under key. No entry: an error matching
	// [ErrStoreMiss].
	Load(ctx context.Context, key string) (StoredToken, error)

	// CompareAndSwap stores next under key if the entry stored there has
	// version old (0: there is no entry, or one without a version). The
	// stored entry gets version NextStoredVersion(old, now), which
	// CompareAndSwap returns with swapped true. If the stored version is
	// another, nothing changes and CompareAndSwap returns that version with
	// swapped false. next.Version is ignored.
	CompareAndSwap(ctx context.Context, key string, old uint64, next StoredToken) (version uint64, swapped bool, err error)

	// AcquireLease takes the lease on key for holder (a value unique to the
	// caller, e.g. from [NewLeaseHolder]) for ttl, unless another holder has
	// a lease that has not ended. It does not wait: it reports whether the
	// lease is now held by holder. Acquiring a lease one already holds
	// extends it. A holder that dies loses the lease when ttl ends.
	AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error)

	// ReleaseLease ends holder's lease on key. It does nothing if the lease
	// has ended or another holder has it since.
	ReleaseLease(ctx context.Context, key, holder string) error

	// CoolDown returns the time until which the token endpoint for key must
	// not be asked; the zero time if there is no cool-down.
	CoolDown(ctx context.Context, key string) (time.Time, error)

	// SetCoolDown asks that the token endpoint for key not be asked before
	// until. A cool-down never shortens: the later of the stored time and
	// until is kept.
	SetCoolDown(ctx context.Context, key string, until time.Time) error
}

// StoredToken is the entry a [TokenStore] holds for a key: an OAuth2 token
// and what identifies the exact token held.
type StoredToken struct {
	// AccessToken is the token sent to the resource server; empty once the
	// token was invalidated.
	AccessToken string
	// TokenType is the token_type the endpoint gave, e.g. "Bearer" or "DPoP".
	TokenType string
	// Expiry is when the access token expires; zero: unknown.
	Expiry time.Time
	// RefreshToken is the latest refresh token: a rotation by one process
	// is seen by all.
	RefreshToken string
	// Scopes are the scopes granted, if the endpoint said.
	Scopes []string
	// DPoPJKT is the RFC 7638 thumbprint of the DPoP key the token is bound
	// to (RFC 9449 §6); empty without DPoP.
	DPoPJKT string
	// Version is set by the store: it grows with every CompareAndSwap.
	Version uint64
}

// String describes t without its tokens, so that a store that logs what it
// loads (%v, %+v, slog) prints no secret.
func (t StoredToken) String() string {
	return fmt.Sprintf("reauth.StoredToken{TokenType: %q, Expiry: %s, Scopes: %q, DPoPJKT: %q, Version: %d, AccessToken: %s, RefreshToken: %s}",
		t.TokenType, t.Expiry.Format(time.RFC3339), t.Scopes, t.DPoPJKT, t.Version, heldOrNot(t.AccessToken), heldOrNot(t.RefreshToken))
}

// GoString is String, for %#v.
func (t StoredToken) GoString() string { return t.String() }

func heldOrNot(secret string) string {
	if secret == "" {
		return "none"
	}
	return "(redacted)"
}

// Invalidated reports whether the entry holds no access token (it was
// invalidated, or holds only a refresh token).
func (t StoredToken) Invalidated() bool { return t.AccessToken == "" }

// Errors a [TokenStore] returns.
var (
	// ErrStoreMiss is matched when a store holds no entry for a key.
	ErrStoreMiss = errors.New("reauth: no token stored for the key")
	// ErrStoreEntryInvalid is matched when a stored entry is corrupt, was
	// written for another key, or was not written by reauth. Callers ignore
	// the entry.
	ErrStoreEntryInvalid = errors.New("reauth: stored token entry is corrupt or foreign")
	// ErrStoreWrongKey is matched when a stored entry is sealed with an
	// encryption key the store does not hold, or is sealed while the store
	// has no key, or is plain while the store requires encryption.
	ErrStoreWrongKey = errors.New("reauth: stored token entry is sealed with another key")
)

// TokenIdentity is what makes two tokens interchangeable: the same token
// endpoint, client, scopes, audience and DPoP key.
type TokenIdentity struct {
	// TokenURL is the token endpoint.
	TokenURL string
	// ClientID is the OAuth2 client.
	ClientID string
	// Scopes are the scopes asked for; order and duplicates do not matter.
	Scopes []string
	// Audience is the audience or resource asked for (RFC 8707), if any.
	Audience string
	// DPoPThumbprint is the RFC 7638 thumbprint of the DPoP public key;
	// empty without DPoP.
	DPoPThumbprint string
}

// StoreKey returns the key under which a [TokenStore] holds the token of id:
// 64 hex digits of a SHA-256 over the identity, so the client id and the
// endpoint do not appear in clear in the store's keys, and identities that
// differ in any field never share a key.
func StoreKey(id TokenIdentity) string {
	scopes := slices.Clone(id.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	h := sha256.New()
	field := func(s string) {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("reauth token identity v1")
	field(id.TokenURL)
	field(id.ClientID)
	field(id.Audience)
	field(id.DPoPThumbprint)
	for _, s := range scopes {
		field(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NextStoredVersion returns the version that CompareAndSwap gives an entry
// replacing version old at time now: old+1, or, when there was no entry,
// the time in nanoseconds. Starting from the time keeps versions growing
// when a store loses its entries (a flushed Redis, a deleted file), so a
// late compare-and-invalidate never matches a newer token.
func NextStoredVersion(old uint64, now time.Time) uint64 {
	if old != 0 {
		return old + 1
	}
	if ns := now.UnixNano(); ns > 0 {
		return uint64(ns)
	}
	return 1
}

// InvalidateStoredToken removes the access token that seen holds from the
// store, if the store still holds that token (the same version): a 401
// invalid_token for a token another process already replaced never throws
// the newer one away. The refresh token stays, so the next fetch can use it.
// It reports whether it removed the token.
func InvalidateStoredToken(ctx context.Context, s TokenStore, key string, seen StoredToken) (bool, error) {
	if seen.Version == 0 {
		return false, nil
	}
	next := seen
	next.AccessToken, next.TokenType, next.Expiry = "", "", time.Time{}
	_, swapped, err := s.CompareAndSwap(ctx, key, seen.Version, next)
	return swapped, err
}

// NewLeaseHolder returns a random holder id for [TokenStore.AcquireLease].
func NewLeaseHolder() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// EntryEncryption seals stored entries with AES-GCM under a key the user
// supplies. The key id is written in each entry, so an entry sealed under
// another key is reported as [ErrStoreWrongKey] rather than as corrupt; the
// store key is authenticated with the entry, so an entry copied under
// another key does not open.
type EntryEncryption struct {
	keyID string
	aead  cipher.AEAD
}

// NewEntryEncryption returns an encryption with key (16, 24 or 32 bytes:
// AES-128, -192 or -256) named keyID (1 to 64 bytes; change it when the key
// changes).
func NewEntryEncryption(keyID string, key []byte) (*EntryEncryption, error) {
	if keyID == "" || len(keyID) > maxKeyID {
		return nil, fmt.Errorf("reauth: the encryption key id must be 1 to %d bytes, got %d", maxKeyID, len(keyID))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("reauth: the encryption key must be 16, 24 or 32 bytes, got %d", len(key))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("reauth: AES-GCM: %v", err)
	}
	return &EntryEncryption{keyID: keyID, aead: aead}, nil
}

// The entry format (version 1):
//
//	magic "RAT1" | flags (1 byte: 1 = sealed) | version (8 bytes, big endian)
//	| key id length (1 byte) | key id | payload
//
// The payload is the JSON of storedEntry, which repeats the store key; when
// sealed it is nonce || AES-GCM ciphertext with the header and the store key
// as additional data.
var entryMagic = []byte("RAT1")

const (
	flagSealed    = 1
	maxKeyID      = 64
	maxEntrySize  = 1 << 20
	entryHeadSize = 4 + 1 + 8 + 1
)

type storedEntry struct {
	Key          string    `json:"k"`
	AccessToken  string    `json:"at,omitempty"`
	TokenType    string    `json:"tt,omitempty"`
	Expiry       time.Time `json:"exp,omitzero"`
	RefreshToken string    `json:"rt,omitempty"`
	Scopes       []string  `json:"sc,omitempty"`
	DPoPJKT      string    `json:"jkt,omitempty"`
}

// EncodeStoredToken returns the bytes a store keeps for t under key with
// version, sealed with enc unless enc is nil. Store implementations call it;
// callers of a store do not need to.
func EncodeStoredToken(key string, version uint64, t StoredToken, enc *EntryEncryption) ([]byte, error) {
	payload, err := json.Marshal(storedEntry{
		Key: key, AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry,
		RefreshToken: t.RefreshToken, Scopes: t.Scopes, DPoPJKT: t.DPoPJKT,
	})
	if err != nil {
		return nil, fmt.Errorf("reauth: encoding the stored token: %v", err)
	}
	var head bytes.Buffer
	head.Write(entryMagic)
	flags, keyID := byte(0), ""
	if enc != nil {
		flags, keyID = flagSealed, enc.keyID
	}
	head.WriteByte(flags)
	_ = binary.Write(&head, binary.BigEndian, version)
	head.WriteByte(byte(len(keyID)))
	head.WriteString(keyID)
	out := head.Bytes()
	if enc == nil {
		return append(out, payload...), nil
	}
	nonce := make([]byte, enc.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return enc.aead.Seal(out, nonce, payload, additionalData(out[:len(out)-len(nonce)], key)), nil
}

// DecodeStoredToken reads what [EncodeStoredToken] wrote for key. An entry
// it cannot read matches [ErrStoreEntryInvalid] or [ErrStoreWrongKey]; the
// error names the reason and never includes the entry's bytes.
func DecodeStoredToken(key string, data []byte, enc *EntryEncryption) (StoredToken, error) {
	invalid := func(why string) (StoredToken, error) {
		return StoredToken{}, fmt.Errorf("%w: %s", ErrStoreEntryInvalid, why)
	}
	if len(data) > maxEntrySize {
		return invalid("larger than 1 MiB")
	}
	if len(data) < entryHeadSize || !bytes.Equal(data[:4], entryMagic) {
		return invalid("not a reauth token entry (no RAT1 header)")
	}
	flags := data[4]
	version := binary.BigEndian.Uint64(data[5:13])
	idLen := int(data[13])
	if flags&^flagSealed != 0 || len(data) < entryHeadSize+idLen {
		return invalid("unknown flags or truncated header")
	}
	keyID := string(data[entryHeadSize : entryHeadSize+idLen])
	head, payload := data[:entryHeadSize+idLen], data[entryHeadSize+idLen:]
	// From here on the header is sound: errors carry the version, so the
	// caller can replace the entry with CompareAndSwap.
	invalid = func(why string) (StoredToken, error) {
		return StoredToken{Version: version}, fmt.Errorf("%w: %s", ErrStoreEntryInvalid, why)
	}
	wrongKey := func(format string, args ...any) (StoredToken, error) {
		return StoredToken{Version: version}, fmt.Errorf("%w: "+format, append([]any{ErrStoreWrongKey}, args...)...)
	}
	switch {
	case flags&flagSealed == 0 && enc != nil:
		return wrongKey("the entry is not encrypted but the store requires encryption")
	case flags&flagSealed != 0 && enc == nil:
		return wrongKey("the entry is encrypted but the store has no encryption key")
	case flags&flagSealed != 0 && keyID != enc.keyID:
		return wrongKey("the entry is sealed with key id %q, the store holds %q", keyID, enc.keyID)
	case flags&flagSealed != 0:
		n := enc.aead.NonceSize()
		if len(payload) < n {
			return invalid("truncated ciphertext")
		}
		plain, err := enc.aead.Open(nil, payload[:n], payload[n:], additionalData(head, key))
		if err != nil {
			// The key id matched, so this is tampering, another key under the
			// same id, or an entry copied from another store key.
			return wrongKey("the entry does not open with key id %q (another key under that id, tampered, or copied from another store key)", keyID)
		}
		payload = plain
	}
	var e storedEntry
	if err := json.Unmarshal(payload, &e); err != nil {
		return invalid("payload is not valid JSON")
	}
	if e.Key != key {
		return invalid("written for another key")
	}
	return StoredToken{
		AccessToken: e.AccessToken, TokenType: e.TokenType, Expiry: e.Expiry,
		RefreshToken: e.RefreshToken, Scopes: e.Scopes, DPoPJKT: e.DPoPJKT, Version: version,
	}, nil
}

// StoredVersion returns the version in an entry's header without decoding
// it, 0 if data is not an entry. Stores use it to compare versions under
// their lock.
func StoredVersion(data []byte) uint64 {
	if len(data) < entryHeadSize || !bytes.Equal(data[:4], entryMagic) {
		return 0
	}
	return binary.BigEndian.Uint64(data[5:13])
}

func additionalData(head []byte, key string) []byte {
	ad := make([]byte, 0, len(head)+len(key))
	return append(append(ad, head...), key...)
}
