package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func messageFrame(body int) []byte {
	m := &Message{Origin: 7, Seq: 1, Hop: 1, Body: make([]byte, body)}
	m.ID = ComputeMsgID(m.Origin, m.Seq, m.Body)
	return AppendMessage(nil, m)
}

// TestLargeFrameBufferIsNotKept: an idle connection must not keep the
// buffer of the largest frame it ever carried. Frames above 64 KiB get a
// buffer of their own; the reused one stays small.
func TestLargeFrameBufferIsNotKept(t *testing.T) {
	var stream []byte
	stream = append(stream, messageFrame(100)...)
	stream = append(stream, messageFrame(DefaultMaxBody)...)
	stream = append(stream, messageFrame(200)...)
	r := NewReader(bytes.NewReader(stream), DefaultMaxFrame)
	var big Frame
	for i := range 3 {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			big = f
		}
		if cap(r.buf) > smallFrame {
			t.Fatalf("after frame %d the reader keeps a %d-byte buffer, want at most %d", i, cap(r.buf), smallFrame)
		}
	}
	// The large frame's payload was its own: the next frame did not
	// overwrite it.
	if m, err := DecodeMessage(big.Payload, DefaultMaxBody); err != nil || len(m.Body) != DefaultMaxBody {
		t.Fatalf("large frame after the next read: %v, body %d", err, len(m.Body))
	}
}

// TestAdmitRunsBeforeThePayload: the admit hook sees the frame's full size
// before a byte of the payload is read, and its error ends the read.
func TestAdmitRunsBeforeThePayload(t *testing.T) {
	stream := messageFrame(1000)
	src := &countingReader{r: bytes.NewReader(stream)}
	// A bufio reader reads ahead; an unbuffered source one byte at a time
	// shows exactly how far the frame reader had got.
	r := NewReader(io.LimitReader(oneByte{src}, int64(len(stream))), DefaultMaxFrame)
	var sizes []int
	var readAtAdmit int
	r.SetAdmit(func(size int) error {
		sizes = append(sizes, size)
		readAtAdmit = src.read
		return nil
	})
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] != len(stream) {
		t.Fatalf("admit saw sizes %v, want [%d]", sizes, len(stream))
	}
	if readAtAdmit != lengthSize {
		t.Errorf("admit ran after %d bytes were read, want just the %d-byte length prefix", readAtAdmit, lengthSize)
	}

	refused := errors.New("over budget")
	r = NewReader(bytes.NewReader(stream), DefaultMaxFrame)
	r.SetAdmit(func(int) error { return refused })
	if _, err := r.ReadFrame(); !errors.Is(err, refused) {
		t.Fatalf("admit refused, ReadFrame returned %v", err)
	}
	// Oversized frames are refused by the limit, before admit is asked.
	r = NewReader(bytes.NewReader(stream), 100)
	r.SetAdmit(func(int) error { t.Error("admit asked about an oversized frame"); return nil })
	if _, err := r.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// oneByte reads at most one byte per call.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
