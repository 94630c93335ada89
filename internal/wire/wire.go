// Package wire holds the two pieces of the proxy's hot path that the
// benchmark's bare baseline proxy must share with it: the copy-buffer pool
// and the short-body read. It is internal: nothing outside the module uses it.
package wire

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"sync"
)

// inMemoryBody is the largest request body of known length that is read
// whole before it is forwarded (see Transport.RoundTrip).
const inMemoryBody = 64 << 10

var bufPool = &syncBufferPool{}

// CopyBuffers is the pool of 32 KiB copy buffers mcptap's reverse proxy
// uses; bench/proxybench's bare proxy copies the same way.
func CopyBuffers() httputil.BufferPool { return bufPool }

// copyBufSize is the size of each copy buffer.
const copyBufSize = 32 << 10

// syncBufferPool pools the buffers as array pointers: converting a slice back
// to one costs nothing, where pooling a *[]byte allocates on every Put.
type syncBufferPool struct{ p sync.Pool }

func (b *syncBufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufSize]byte); ok {
		return v[:]
	}
	return new([copyBufSize]byte)[:]
}

func (b *syncBufferPool) Put(buf []byte) {
	if len(buf) == copyBufSize {
		b.p.Put((*[copyBufSize]byte)(buf))
	}
}

// ReadShortBody reads a short request body whole (known length up to 64
// KiB, no Expect header) and returns a shallow copy of req that carries it
// as an in-memory body, which net/http writes with the request head in one
// segment instead of flushing the head first as it does for a body it cannot
// tell will not block (golang/go#22088). The copy can be retried (GetBody),
// and req's own body is closed. With Expect (100-continue) the client waits
// for the upstream's go-ahead before sending, so such a body must stream.
// ok is false, and nothing is read, for any other request. If the body ends
// early, err says so and body holds what arrived.
func ReadShortBody(req *http.Request) (out *http.Request, body []byte, ok bool, err error) {
	n := req.ContentLength
	if n <= 0 || n > inMemoryBody || req.Body == nil || req.Body == http.NoBody || len(req.Header["Expect"]) != 0 {
		return req, nil, false, nil
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(req.Body, buf)
	_ = req.Body.Close()
	if err != nil {
		return req, buf[:got], true, fmt.Errorf("read request body from the client: %w", err)
	}
	cp := *req
	cp.Body = io.NopCloser(bytes.NewReader(buf))
	cp.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return &cp, buf, true, nil
}
