package negotiate

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/reauth/reauth"
)

// maxTokenBytes bounds a server's Negotiate token before it is decoded: an
// AP-REP is a few hundred bytes; a KRB-ERROR with e-data a few thousand.
const maxTokenBytes = 64 << 10

// GSS-API token IDs of the Kerberos mechanism (RFC 4121 §4.1).
var (
	tokIDAPReq = [2]byte{0x01, 0x00}
	tokIDAPRep = [2]byte{0x02, 0x00}
)

// secContext is what one Negotiate token leaves for checking the server's
// answer to it: the session key of the ticket it carried and the time in its
// authenticator, which the AP-REP must echo (RFC 4120 §3.2.4). A context
// belongs to one request: every token is built afresh, so no two requests
// (and no two attempts) send the same one.
type secContext struct {
	spn   string
	key   types.EncryptionKey
	ctime time.Time // as sent: whole seconds, UTC
	cusec int
}

// initToken asks cl for a service ticket for spn (from its cache, or from
// the KDC) and returns the base64 token for "Negotiate <token>" with the
// context to verify the answer.
func initToken(cl *client.Client, spn string) (string, *secContext, error) {
	if cl == nil || cl.Credentials == nil {
		return "", nil, errNoClient
	}
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		// gokrb5 flattens the KDC's KRB-ERROR into a Krberror whose root
		// cause says who failed: the KDC (final) or the network (not).
		var kerr krberror.Krberror
		if errors.As(err, &kerr) && kerr.RootCause == krberror.KDCError {
			return "", nil, fmt.Errorf("%w for %s: %w", ErrKDCRefused, spn, err)
		}
		return "", nil, fmt.Errorf("reauth: negotiate: no service ticket for %s: %w", spn, err)
	}
	return initTokenFor(cl.Credentials, spn, tkt, key)
}

// initTokenFor builds the token for a ticket already in hand: a SPNEGO
// NegTokenInit (RFC 4178 §4.2.1) offering Kerberos 5 only, whose mechToken
// is an AP-REQ that asks for mutual authentication twice over, as MIT's and
// Microsoft's acceptors read it: the AP option MUTUAL-REQUIRED
// (RFC 4120 §5.5.1) and GSS_C_MUTUAL_FLAG in the authenticator's checksum
// (RFC 4121 §4.1.1).
func initTokenFor(creds *credentials.Credentials, spn string, tkt messages.Ticket, key types.EncryptionKey) (string, *secContext, error) {
	auth, err := types.NewAuthenticator(creds.Domain(), creds.CName())
	if err != nil {
		return "", nil, fmt.Errorf("reauth: negotiate: authenticator: %w", err)
	}
	// KerberosTime has whole seconds; the microseconds go in cusec.
	auth.CTime = auth.CTime.Truncate(time.Second)
	auth.Cksum = types.Checksum{
		CksumType: chksumtype.GSSAPI,
		Checksum:  gssChecksum(gssapi.ContextFlagMutual | gssapi.ContextFlagInteg | gssapi.ContextFlagConf),
	}
	apReq, err := messages.NewAPReq(tkt, key, auth)
	if err != nil {
		return "", nil, fmt.Errorf("reauth: negotiate: AP-REQ: %w", err)
	}
	types.SetFlag(&apReq.APOptions, flags.APOptionMutualRequired)
	b, err := apReq.Marshal()
	if err != nil {
		return "", nil, fmt.Errorf("reauth: negotiate: AP-REQ: %w", err)
	}
	mech, err := gssToken(tokIDAPReq, b)
	if err != nil {
		return "", nil, err
	}
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes:      []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()},
		MechTokenBytes: mech,
	}}
	out, err := tok.Marshal()
	if err != nil {
		return "", nil, fmt.Errorf("reauth: negotiate: SPNEGO token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), &secContext{
		spn: spn, key: key, ctime: auth.CTime.UTC(), cusec: auth.Cusec,
	}, nil
}

// gssChecksum is the authenticator checksum of RFC 4121 §4.1.1: Lgth 16, a
// zero channel binding (HTTP has none to bind), and the context flags.
func gssChecksum(contextFlags uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:4], 16)
	binary.LittleEndian.PutUint32(b[20:24], contextFlags)
	return b
}

// gssToken frames a Kerberos message as a GSS-API token of the Kerberos
// mechanism (RFC 2743 §3.1, RFC 4121 §4.1): [APPLICATION 0] { OID, TOK_ID,
// message }.
func gssToken(id [2]byte, msg []byte) ([]byte, error) {
	oid, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return nil, fmt.Errorf("reauth: negotiate: GSS-API token: %w", err)
	}
	b := make([]byte, 0, len(oid)+2+len(msg))
	b = append(append(append(b, oid...), id[:]...), msg...)
	return asn1tools.AddASNAppTag(b, 0), nil
}

// serverToken returns the decoded token of the Negotiate challenge in h's
// WWW-Authenticate (Proxy-Authenticate when proxy) fields, and whether there
// was one. Several Negotiate tokens, or one that is not base64, are an
// error: which of them would be the server's proof?
func serverToken(h http.Header, proxy bool) ([]byte, bool, error) {
	field := "Www-Authenticate"
	if proxy {
		field = "Proxy-Authenticate"
	}
	values := h[field]
	if len(values) == 0 {
		return nil, false, nil
	}
	challenges, err := reauth.ParseChallenges(values...)
	var token string
	n := 0
	for _, c := range challenges {
		if c.Is("Negotiate") && c.Token68 != "" {
			token = c.Token68
			n++
		}
	}
	switch {
	case n == 0 && err != nil:
		return nil, false, fmt.Errorf("%w: the %s field does not parse: %w", ErrMutualAuthentication, field, err)
	case n == 0:
		return nil, false, nil
	case n > 1:
		return nil, true, fmt.Errorf("%w: the server sent %d Negotiate tokens, expected one", ErrMutualAuthentication, n)
	case len(token) > maxTokenBytes:
		return nil, true, fmt.Errorf("%w: the server's Negotiate token is %d bytes, over the %d-byte limit", ErrMutualAuthentication, len(token), maxTokenBytes)
	}
	b, derr := base64.StdEncoding.DecodeString(token)
	if derr != nil {
		return nil, true, fmt.Errorf("%w: the server's Negotiate token is not base64", ErrMutualAuthentication)
	}
	return b, true, nil
}

// verify checks the server's final Negotiate token against this context: a
// SPNEGO NegTokenResp (RFC 4178 §4.2.2) that accepts Kerberos and carries
// an AP-REP whose encrypted part (key usage 12) decrypts with the ticket's
// session key and echoes the authenticator's ctime and cusec
// (RFC 4120 §3.2.4, §5.5.2). Only the holder of the service key could have
// read that session key from the ticket, so this proves the server is the
// principal the ticket was for. Errors match ErrMutualAuthentication and
// name what failed, never key material.
func (c *secContext) verify(token []byte) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrMutualAuthentication, c.spn}, a...)...)
	}
	var resp spnego.NegTokenResp
	if err := resp.Unmarshal(token); err != nil {
		return fail("the server's token is not a SPNEGO response")
	}
	if resp.State() != spnego.NegStateAcceptCompleted {
		return fail("the server's SPNEGO state is %d, not accept-completed (0)", resp.State())
	}
	if len(resp.SupportedMech) > 0 &&
		!resp.SupportedMech.Equal(gssapi.OIDKRB5.OID()) && !resp.SupportedMech.Equal(gssapi.OIDMSLegacyKRB5.OID()) {
		return fail("the server chose mechanism %s, not Kerberos 5", resp.SupportedMech)
	}
	if len(resp.ResponseToken) == 0 {
		return fail("the server's SPNEGO response carries no AP-REP")
	}
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(resp.ResponseToken); err != nil {
		return fail("the server's response token is not a Kerberos token")
	}
	switch {
	case mt.IsKRBError():
		return fail("the server answered with KRB-ERROR %s", errorcode.Lookup(mt.KRBError.ErrorCode))
	case !mt.IsAPRep():
		return fail("the server's Kerberos token is not an AP-REP")
	}
	plain, err := crypto.DecryptEncPart(mt.APRep.EncPart, c.key, keyusage.AP_REP_ENCPART)
	if err != nil {
		return fail("the AP-REP does not decrypt with the session key: the server does not hold the service key")
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return fail("the AP-REP's encrypted part does not parse")
	}
	if !part.CTime.Equal(c.ctime) || part.Cusec != c.cusec {
		return fail("the AP-REP answers another authenticator (a replayed answer)")
	}
	return nil
}
