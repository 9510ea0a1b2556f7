package reauth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// replayableBody holds what a Transport needs to send a request body again
// after a challenge (DESIGN.md, invariant 5): the request's own GetBody, or a copy
// of a body without GetBody buffered up to Transport.MaxBufferedBody. A body
// that is larger is sent once, and replayable is false: it is never re-sent
// empty or cut short.
type replayableBody struct {
	getBody    func() (io.ReadCloser, error)
	buf        []byte
	buffered   bool
	replayable bool
	first      io.ReadCloser // what the first attempt sends when it differs from req.Body
	signed     []byte        // the body read once for Body(), cached
	signedRead bool
}

// prepare inspects req's body (neither nil nor http.NoBody) before the first
// send. It reads the body only when it must be buffered to be replayable.
func (b *replayableBody) prepare(req *http.Request, limit int64) error {
	switch {
	case req.GetBody != nil:
		b.getBody = req.GetBody
		b.replayable = true
		return nil
	case limit < 0:
		return nil
	}
	// A body that streams slowly must not hold the request past its
	// context: closing the body ends the read.
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { req.Body.Close() })
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	stop()
	if ctx.Err() != nil {
		req.Body.Close()
		return ctx.Err()
	}
	if err != nil {
		req.Body.Close()
		return fmt.Errorf("reauth: reading the request body to make it replayable: %w", err)
	}
	if int64(len(buf)) > limit {
		// Too large to hold: send what was read followed by the rest, once.
		b.first = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
		return nil
	}
	req.Body.Close()
	b.buf, b.buffered, b.replayable = buf, true, true
	return nil
}

// firstBody returns the body for the first attempt.
func (b *replayableBody) firstBody(req *http.Request) io.ReadCloser {
	switch {
	case b.first != nil:
		return b.first
	case b.buffered:
		return io.NopCloser(bytes.NewReader(b.buf))
	}
	return req.Body
}

// again returns a fresh copy of the body for a retry.
func (b *replayableBody) again() (io.ReadCloser, error) {
	switch {
	case b.buffered:
		return io.NopCloser(bytes.NewReader(b.buf)), nil
	case b.getBody != nil:
		body, err := b.getBody()
		if err != nil {
			return nil, fmt.Errorf("reauth: GetBody for the retry: %w", err)
		}
		return body, nil
	}
	return nil, ErrBodyNotReplayable
}

// bytes returns the whole body for schemes that sign it (Digest auth-int),
// read at most once per request, or an error when it is not replayable or is
// larger than limit.
func (b *replayableBody) bytes(limit int64) ([]byte, error) {
	if b.signedRead {
		return b.signed, nil
	}
	switch {
	case b.buffered:
		b.signed = b.buf
	case b.getBody != nil:
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
		b.signed = data
	case !b.replayable:
		return nil, ErrBodyNotReplayable
	}
	b.signedRead = true
	return b.signed, nil
}
