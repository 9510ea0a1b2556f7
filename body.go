package reauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// maxBodyRead bounds one read of the caller's body, so that a read still
// running for an abandoned attempt adds at most this much past
// MaxBufferedBody to the replay buffer.
const maxBodyRead = 32 << 10

var (
	errAttemptOver   = errors.New("reauth: request body moved on to the retry of this request")
	errAttemptClosed = errors.New("reauth: read on a closed request body")
)

// replayableBody is the caller's request body as the attempts of one
// RoundTrip send it (DESIGN.md, invariant 5). It reads ahead of the base only
// to sign the body (Digest qop=auth-int): a body is sent as it is produced,
// so a full-duplex stream that ends only after the response goes out as it
// would without reauth. A retry gets the same bytes, in one of three ways:
//
//   - GetBody: the first attempt sends the body itself, a retry GetBody's.
//   - a seekable body (io.Seeker, e.g. *os.File): each attempt reads it
//     through an attemptBody, and a retry seeks back to where it started.
//   - any other body: each attempt reads it through an attemptBody, which
//     tees what it reads into buf, up to limit. A retry sends buf and then
//     the rest of the caller's body, which no attempt has read yet (the
//     base may stop reading early, e.g. on an early 401): every byte read
//     from the caller's body is in buf, in order, so buf followed by the rest
//     is the whole body. A body that outgrows limit cannot be sent again.
//
// Only one attempt reads the caller's body at a time (turn): the base may
// still be reading for an abandoned attempt when the retry starts
// (RoundTripper contract). That read's bytes go to buf for the retry, and the
// abandoned attempt gets an error. RoundTrip itself never waits for a read,
// except to sign the body (Digest qop=auth-int), which needs all of it.
//
// The caller's body is closed exactly once: when the RoundTrip is over and
// the base has closed every attempt's body (refs), or earlier when the
// request's context ends. A body with GetBody is the base's to close once
// the first attempt has been sent, and the RoundTrip's before.
type replayableBody struct {
	body io.ReadCloser   // the caller's
	ctx  context.Context // the request's: its end closes body

	// GetBody mode.
	getBody   func() (io.ReadCloser, error)
	firstSent bool // body went to the base with the first attempt

	seeker io.Seeker // seek mode
	start  int64     // seek mode: offset where the body starts

	turn chan struct{} // one token: whoever holds it may read body

	mu      sync.Mutex
	at      int64  // stream: bytes read from body; seek: its offset from start
	buf     []byte // stream: body[0:len(buf)], unless dropped
	limit   int64  // stream: the most buf may hold to be sent again; <0: none
	over    bool   // stream: the body outgrew limit, it cannot be sent again
	dropped bool   // stream: buf was let go once over and read past
	eof     bool   // stream: body returned io.EOF
	err     error  // stream: body returned this error
	current *attemptBody
	refs    int // the RoundTrip, and each attempt body the base has not closed
	closed  bool
	stop    func() bool // ends the close when the context ends

	signed     []byte // the body read once for Body(), cached
	signedRead bool
}

// newReplayableBody takes over req's body (neither nil nor http.NoBody).
// limit is Transport.MaxBufferedBody as configured (<0: never buffer).
func newReplayableBody(req *http.Request, limit int64) *replayableBody {
	b := &replayableBody{body: req.Body, ctx: req.Context()}
	if req.GetBody != nil {
		b.getBody = req.GetBody
		return b
	}
	b.turn = make(chan struct{}, 1)
	b.turn <- struct{}{}
	b.refs = 1
	b.limit = limit
	// As in net/http, the context bounds sending the body: its end closes
	// the caller's body, which ends a read that would block (a stream whose
	// producer waits), for the base and for a read ahead.
	b.stop = context.AfterFunc(b.ctx, b.close)
	if s, ok := req.Body.(io.Seeker); ok {
		// A pipe or a terminal is an *os.File too, but cannot seek.
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			b.seeker, b.start = s, off
		}
	}
	return b
}

// next returns the body for the next attempt. A retry must have been
// allowed by rewind.
func (b *replayableBody) next() (io.ReadCloser, error) {
	if b.getBody != nil {
		if !b.firstSent {
			b.firstSent = true
			return b.body, nil
		}
		body, err := b.getBody()
		if err != nil {
			return nil, fmt.Errorf("reauth: GetBody for the retry: %w", err)
		}
		return body, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current != nil {
		return nil, ErrBodyNotReplayable // not rewound: a bug, never a cut body
	}
	a := &attemptBody{b: b, closed: make(chan struct{})}
	b.current = a
	b.refs++
	return a, nil
}

// rewind makes the next attempt start the body again, or says why it
// cannot. The attempt sent before is abandoned: its body gives the base an
// error from now on.
func (b *replayableBody) rewind() error {
	if b.getBody != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seeker == nil && (b.over || b.limit < 0 || b.err != nil) {
		return ErrBodyNotReplayable
	}
	if b.current != nil {
		b.current.abandoned = true
		b.current = nil
	}
	return nil
}

// done ends the RoundTrip's hold on the caller's body: it is closed now, or
// when the base closes the last attempt's body.
func (b *replayableBody) done() {
	if b.getBody != nil {
		if !b.firstSent {
			b.body.Close()
		}
		return
	}
	b.release()
}

func (b *replayableBody) release() {
	b.mu.Lock()
	b.refs--
	last := b.refs == 0
	b.mu.Unlock()
	if last {
		b.close()
	}
}

// close closes the caller's body unless it is closed already.
func (b *replayableBody) close() {
	b.mu.Lock()
	closed := b.closed
	b.closed = true
	b.mu.Unlock()
	if !closed {
		if b.stop != nil {
			b.stop()
		}
		b.body.Close()
	}
}

// takeTurn waits until no one else reads the caller's body, or abort, or
// the end of the context.
func (b *replayableBody) takeTurn(abort <-chan struct{}) error {
	select {
	case <-b.turn:
		return nil
	case <-abort:
		return errAttemptClosed
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

func (b *replayableBody) giveTurn() { b.turn <- struct{}{} }

// read reads the caller's body at offset pos (b.mu held, turn taken; b.mu is
// let go during the read itself, so that Close and rewind never wait for it).
func (b *replayableBody) read(p []byte, pos int64) (int, error) {
	if b.seeker != nil && b.at != pos {
		if _, err := b.seeker.Seek(b.start+pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("reauth: seeking the request body back for the retry: %w", err)
		}
		b.at = pos
	}
	b.mu.Unlock()
	n, err := b.body.Read(p[:min(len(p), maxBodyRead)])
	b.mu.Lock()
	b.at += int64(n)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		// The end of the context closed the body: say so, not "closed pipe".
		err = b.ctx.Err()
	}
	return n, err
}

// tee records what a read of a stream returned (b.mu held). keep: a newer
// attempt still needs these bytes, even past limit (they are at most
// maxBodyRead); otherwise buf is let go once the body has outgrown limit.
func (b *replayableBody) tee(data []byte, err error, keep bool) {
	switch {
	case b.over && !keep:
		b.buf, b.dropped = nil, true
	case b.limit >= 0 && (keep || int64(len(b.buf)+len(data)) <= b.limit):
		b.buf = append(b.buf, data...)
		b.over = b.over || int64(len(b.buf)) > b.limit
	default:
		b.over = true
		b.buf, b.dropped = nil, true
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
}

// attemptBody is the request body of one attempt.
type attemptBody struct {
	b         *replayableBody
	pos       int64
	abandoned bool // b.mu: a retry took over the caller's body
	isClosed  bool // b.mu
	closeOnce sync.Once
	closed    chan struct{}
}

func (a *attemptBody) Read(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	if n, err, ok := a.buffered(p); ok {
		b.mu.Unlock()
		return n, err
	}
	b.mu.Unlock()
	// A read for an abandoned attempt may still run: wait for it.
	if err := b.takeTurn(a.closed); err != nil {
		return 0, err
	}
	defer b.giveTurn()
	b.mu.Lock()
	defer b.mu.Unlock()
	if n, err, ok := a.buffered(p); ok {
		return n, err
	}
	n, err := b.read(p, a.pos)
	if b.seeker == nil {
		b.tee(p[:n], err, a.abandoned)
	}
	if a.abandoned {
		// The retry started during the read: the bytes are its now.
		return 0, errAttemptOver
	}
	a.pos += int64(n)
	return n, err
}

// buffered answers a read without reading the caller's body, if it can
// (b.mu held).
func (a *attemptBody) buffered(p []byte) (int, error, bool) {
	b := a.b
	switch {
	case a.isClosed:
		return 0, errAttemptClosed, true
	case a.abandoned:
		return 0, errAttemptOver, true
	case b.closed:
		if err := b.ctx.Err(); err != nil {
			return 0, err, true
		}
		return 0, errAttemptClosed, true
	case b.seeker != nil:
		return 0, nil, false
	case !b.dropped && a.pos < int64(len(b.buf)):
		n := copy(p, b.buf[a.pos:])
		a.pos += int64(n)
		return n, nil, true
	case a.pos < b.at:
		return 0, ErrBodyNotReplayable, true // dropped: rewind prevents this
	case b.eof:
		return 0, io.EOF, true
	case b.err != nil:
		return 0, b.err, true
	}
	return 0, nil, false
}

// Close tells that the base is done with this attempt's body.
func (a *attemptBody) Close() error {
	a.closeOnce.Do(func() {
		a.b.mu.Lock()
		a.isClosed = true
		a.b.mu.Unlock()
		close(a.closed)
		a.b.release()
	})
	return nil
}

// bytes returns the whole body for schemes that sign it (Digest auth-int),
// read at most once per request, or an error when it is not replayable or is
// larger than limit. It reads ahead of the base, the one case that does: a
// stream is held in buf (up to MaxBufferedBody) to be sent after.
func (b *replayableBody) bytes(limit int64) ([]byte, error) {
	if b.signedRead {
		return b.signed, nil
	}
	var data []byte
	var err error
	switch {
	case b.getBody != nil:
		data, err = b.readGetBody(limit)
	case b.seeker != nil:
		data, err = b.readAhead(limit)
	case b.limit < 0:
		return nil, ErrBodyNotReplayable
	default:
		data, err = b.readAhead(b.limit)
	}
	if err != nil {
		return nil, err
	}
	b.signed, b.signedRead = data, true
	return data, nil
}

func (b *replayableBody) readGetBody(limit int64) ([]byte, error) {
	body, err := b.getBody()
	if err != nil {
		return nil, fmt.Errorf("reauth: GetBody: %w", err)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reauth: reading the request body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reauth: request body over %d bytes cannot be hashed for qop=auth-int", limit)
	}
	return data, nil
}

// readAhead reads the whole body, up to limit bytes, before the base does.
// A body that streams slowly holds the request up to the end of its
// context, which closes the body.
func (b *replayableBody) readAhead(limit int64) ([]byte, error) {
	if err := b.takeTurn(nil); err != nil {
		return nil, err
	}
	defer b.giveTurn()
	b.mu.Lock()
	defer b.mu.Unlock()
	var pos int64
	var seeked []byte // seek mode: what was read from start
	p := make([]byte, 4<<10)
	for {
		if b.seeker == nil {
			if b.eof {
				return b.buf, nil
			}
			if b.err != nil || b.over {
				break
			}
		}
		n, err := b.read(p, pos)
		pos += int64(n)
		if b.seeker == nil {
			b.tee(p[:n], err, true)
		} else {
			seeked = append(seeked, p[:n]...)
			if int64(len(seeked)) > limit {
				return nil, fmt.Errorf("reauth: request body over %d bytes cannot be hashed for qop=auth-int", limit)
			}
			if err == io.EOF {
				return seeked, nil
			}
		}
		if err != nil && err != io.EOF {
			if err := b.ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("reauth: reading the request body: %w", err)
		}
	}
	if b.err != nil {
		return nil, fmt.Errorf("reauth: reading the request body: %w", b.err)
	}
	return nil, ErrBodyNotReplayable
}
