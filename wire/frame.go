package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame layout, all integers big-endian:
//
//	length  uint32  bytes that follow: version + type + payload (at least 2)
//	version uint8   Version
//	type    uint8   a FrameType
//	payload [length-2]byte
//
// The length prefix comes first so that a reader can refuse an oversized
// frame before it reads, let alone allocates, the rest.
const (
	// Version is the only frame version this build speaks. Version 2
	// added the protocol list to the hello and the control frames; version
	// 3 made the hello carry a public key and a nonce instead of a claimed
	// node id, and added the proof frame (see hello.go). A peer of an older
	// version is refused at its first frame with ErrUnknownVersion, and
	// refuses this node's first frame the same way.
	Version = 3
	// lengthSize is the size of the length prefix.
	lengthSize = 4
	// frameHeaderSize is the version and type bytes counted by the length.
	frameHeaderSize = 2
	// FrameOverhead is the room a frame needs beyond a message body: the
	// length prefix, version, type, message header and a signature block.
	// A frame limit of MaxBody+FrameOverhead carries every body of up to
	// MaxBody bytes, signed or not.
	FrameOverhead = lengthSize + frameHeaderSize + messageHeaderSize + AuthSize
	// DefaultMaxBody is the largest message body nodes accept by default.
	DefaultMaxBody = 1 << 20
	// DefaultMaxFrame is the frame limit that goes with DefaultMaxBody.
	DefaultMaxFrame = DefaultMaxBody + FrameOverhead
	// maxAddrLen bounds the listen address in a Hello.
	maxAddrLen = 255
)

// FrameType says what a frame's payload holds.
type FrameType uint8

// Frame types.
const (
	// FrameHello opens every connection, in both directions: it carries
	// the sender's public key (its node id derives from it), a fresh
	// nonce for the peer to sign, and the address it listens on for
	// gossip.
	FrameHello FrameType = 1
	// FrameMessage carries one gossiped Message.
	FrameMessage FrameType = 2
	// FrameIHave announces message ids the sender has (lazy push and
	// Plumtree's lazy links). A Control.
	FrameIHave FrameType = 3
	// FrameIWant asks for the messages with the listed ids (lazy push). A
	// Control.
	FrameIWant FrameType = 4
	// FrameGraft makes the link eager again and asks for the listed ids,
	// if any (Plumtree). A Control.
	FrameGraft FrameType = 5
	// FramePrune makes the link lazy, with a reason (Plumtree). A Control.
	FramePrune FrameType = 6
	// FramePull carries a digest of what the sender has, per origin, and
	// asks for what it lacks (anti-entropy). A Control.
	FramePull FrameType = 7
	// FrameProof follows the hello in both directions: the sender's
	// signature over the peer's nonce and both public keys, which proves
	// that it holds the key its hello named. Only in the handshake.
	FrameProof FrameType = 8
)

// String names the frame type as logs and errors print it.
func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "hello"
	case FrameMessage:
		return "message"
	case FrameIHave:
		return "ihave"
	case FrameIWant:
		return "iwant"
	case FrameGraft:
		return "graft"
	case FramePrune:
		return "prune"
	case FramePull:
		return "pull"
	case FrameProof:
		return "proof"
	case FramePing:
		return "ping"
	case FramePong:
		return "pong"
	case FramePeerExchange:
		return "px"
	}
	return fmt.Sprintf("frame-type-%d", uint8(t))
}

// IsControl reports whether frames of type t carry a Control (decoded by
// DecodeControl) rather than a handshake frame or a message.
func (t FrameType) IsControl() bool { return t >= FrameIHave && t <= FramePull }

// known reports whether this build can decode frames of type t.
func (t FrameType) known() bool {
	return t == FrameHello || t == FrameProof || t == FrameMessage || t.IsControl() || t.IsMembership()
}

// Decoding errors. Each kind of malformed input has its own, so that a node
// can log why it dropped a peer; match them with errors.Is.
var (
	ErrFrameTooLarge  = errors.New("frame exceeds the size limit")
	ErrFrameTooShort  = errors.New("frame length is shorter than its header")
	ErrUnknownVersion = errors.New("unknown frame version")
	ErrUnknownType    = errors.New("unknown frame type")
	ErrTruncated      = errors.New("truncated frame")
	ErrMalformed      = errors.New("malformed payload")
)

// Frame is one decoded frame. Payload aliases the Reader's buffer and is
// valid only until the next ReadFrame.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// smallFrame is the largest frame whose payload a Reader reads into its
// reusable buffer. Larger frames get a buffer of their own that is dropped
// with the frame, so a connection that once carried a 1 MiB frame does not
// hold 1 MiB for the rest of its life.
const smallFrame = 64 << 10

// Reader reads frames from a stream, refusing any frame whose length prefix
// exceeds its limit before reading the rest.
type Reader struct {
	r        *bufio.Reader
	maxFrame int
	buf      []byte // reused for frames of up to smallFrame bytes
	admit    func(size int) error
}

// NewReader returns a Reader that accepts frames of at most maxFrame bytes,
// length prefix included.
func NewReader(r io.Reader, maxFrame int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), maxFrame: maxFrame}
}

// SetAdmit makes ReadFrame call admit with each frame's size on the wire
// (length prefix included) once the length prefix is read and checked
// against the limit, before any of the payload is read or allocated. A
// runtime uses it to reserve memory for the frame, and may block there: a
// reader that does not read pushes back on the sender through TCP. An error
// from admit ends ReadFrame with that error, in the middle of the frame.
func (fr *Reader) SetAdmit(admit func(size int) error) { fr.admit = admit }

// ReadFrame reads the next frame. It returns io.EOF only for a stream that
// ends cleanly between frames; a stream that ends inside one is
// ErrTruncated. Frames of up to 64 KiB are read into one reused buffer;
// a larger frame gets its own, never beyond the limit.
func (fr *Reader) ReadFrame() (Frame, error) {
	var hdr [lengthSize]byte
	if got, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: %d of %d length bytes", ErrTruncated, got, lengthSize)
		}
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n)+lengthSize > uint64(fr.maxFrame) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, uint64(n)+lengthSize, fr.maxFrame)
	}
	if n < frameHeaderSize {
		return Frame{}, fmt.Errorf("%w: length %d", ErrFrameTooShort, n)
	}
	if fr.admit != nil {
		if err := fr.admit(int(n) + lengthSize); err != nil {
			return Frame{}, err
		}
	}
	var buf []byte
	switch {
	case int(n) > smallFrame:
		buf = make([]byte, n)
	case cap(fr.buf) >= int(n):
		buf = fr.buf[:n]
	default:
		fr.buf = make([]byte, max(n, 512))
		buf = fr.buf[:n]
	}
	if got, err := io.ReadFull(fr.r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, got, n)
		}
		return Frame{}, err
	}
	if buf[0] != Version {
		return Frame{}, fmt.Errorf("%w: %d (this node speaks %d)", ErrUnknownVersion, buf[0], Version)
	}
	t := FrameType(buf[1])
	if !t.known() {
		return Frame{}, fmt.Errorf("%w: %d", ErrUnknownType, buf[1])
	}
	return Frame{Type: t, Payload: buf[frameHeaderSize:]}, nil
}

// AppendMessage appends m as a complete frame to dst. The payload is id,
// origin, seq, hop, published-at, a flags byte, the public key and
// signature when the message is signed (flag bit 0), the body length and
// the body (docs/protocol.md).
func AppendMessage(dst []byte, m *Message) []byte {
	dst = appendFrameHeader(dst, FrameMessage, m.EncodedSize())
	dst = append(dst, m.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Origin))
	dst = binary.BigEndian.AppendUint64(dst, m.Seq)
	dst = binary.BigEndian.AppendUint16(dst, m.Hop)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.PublishedAt))
	if a := m.Auth; a != nil {
		dst = append(dst, flagSigned)
		dst = append(dst, a.Key[:]...)
		dst = append(dst, a.Sig[:]...)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Body)))
	return append(dst, m.Body...)
}

// DecodeMessage parses a message payload. The body and the auth block are
// copied out of p, so the Message outlives the Reader's buffer; maxBody
// bounds the body. An unknown flag bit is ErrMalformed.
func DecodeMessage(p []byte, maxBody int) (Message, error) {
	if len(p) < messageHeaderSize {
		return Message{}, fmt.Errorf("%w: message of %d bytes, header needs %d", ErrMalformed, len(p), messageHeaderSize)
	}
	var m Message
	copy(m.ID[:], p)
	p = p[MsgIDSize:]
	m.Origin = NodeID(binary.BigEndian.Uint64(p))
	m.Seq = binary.BigEndian.Uint64(p[8:])
	m.Hop = binary.BigEndian.Uint16(p[16:])
	m.PublishedAt = int64(binary.BigEndian.Uint64(p[18:]))
	flags := p[26]
	p = p[27:]
	if flags&^knownFlags != 0 {
		return Message{}, fmt.Errorf("%w: message flags %#02x, this node knows %#02x", ErrMalformed, flags, knownFlags)
	}
	if flags&flagSigned != 0 {
		if len(p) < AuthSize+4 {
			return Message{}, fmt.Errorf("%w: signed message with %d bytes after its flags, needs %d", ErrMalformed, len(p), AuthSize+4)
		}
		a := new(Auth)
		copy(a.Key[:], p)
		copy(a.Sig[:], p[AuthKeySize:])
		m.Auth = a
		p = p[AuthSize:]
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n) != uint64(len(p)) {
		return Message{}, fmt.Errorf("%w: body length %d, %d bytes left", ErrMalformed, n, len(p))
	}
	if len(p) > maxBody {
		return Message{}, fmt.Errorf("%w: body of %d bytes, limit %d", ErrFrameTooLarge, len(p), maxBody)
	}
	m.Body = append([]byte(nil), p...)
	return m, nil
}

func appendFrameHeader(dst []byte, t FrameType, payload int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(frameHeaderSize+payload))
	return append(dst, Version, byte(t))
}
