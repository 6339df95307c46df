package amqp

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// ProtocolHeader opens every AMQP 0-9-1 connection.
var ProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

// frameHeaderSize is type (1) + channel (2) + size (4); a frame adds the
// payload and the frame-end octet.
const frameHeaderSize = 7

// defaultMaxFrame is the frame size accepted before tuning.
const defaultMaxFrame = 131072

// Frame is one AMQP frame. Payload aliases the reader's buffer and is valid
// until the next ReadFrame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// FrameReader reads frames from a stream, reusing its buffers: reading a
// frame allocates nothing once the buffers have grown to the traffic. The
// read buffer starts small (an idle connection costs little) and doubles,
// up to the size given to NewFrameReader, while reads keep filling it.
type FrameReader struct {
	src     io.Reader
	buf     []byte // buf[r:w] is read but not yet returned
	r, w    int
	maxBuf  int
	grow    bool // the last read filled the buffer: grow at the next compaction
	small   bool // the last read used under an eighth of the buffer
	max     uint32
	big     []byte // for frames larger than the read buffer
	readErr error
}

// minReadBuffer is the read buffer of a new or idle connection.
const minReadBuffer = 4096

// NewFrameReader reads frames from r through a buffer of up to bufSize bytes.
func NewFrameReader(r io.Reader, bufSize int) *FrameReader {
	bufSize = max(bufSize, minReadBuffer)
	return &FrameReader{src: r, buf: make([]byte, minReadBuffer), maxBuf: bufSize, max: defaultMaxFrame}
}

// SetMaxFrameSize sets the negotiated frame-max (the whole frame, header and
// frame-end included); 0 means no limit beyond 2^32-1.
func (fr *FrameReader) SetMaxFrameSize(n uint32) { fr.max = n }

// Buffered returns the number of bytes already read from the stream but
// not yet returned as frames.
func (fr *FrameReader) Buffered() int { return fr.w - fr.r }

// fill makes at least n bytes (n <= len(fr.buf) after growth) available.
func (fr *FrameReader) fill(n int) error {
	for fr.w-fr.r < n {
		if fr.readErr != nil {
			return fr.readErr
		}
		if fr.r > 0 || fr.w == len(fr.buf) {
			fr.compact()
		}
		m, err := fr.src.Read(fr.buf[fr.w:])
		fr.grow = m == len(fr.buf)-fr.w && len(fr.buf) < fr.maxBuf
		fr.small = m < len(fr.buf)/8
		fr.w += m
		if err != nil {
			fr.readErr = err
		}
	}
	return nil
}

// compact moves the unread bytes to the front, growing or shrinking the
// buffer to the traffic: it doubles after a read that filled it and halves
// when everything was consumed and the last read used under an eighth of
// it, so a busy connection keeps its buffer and a quiet one gives the
// memory back in a few reads.
func (fr *FrameReader) compact() {
	size := len(fr.buf)
	switch {
	case fr.grow:
		size = min(2*size, fr.maxBuf)
		fr.grow = false
	case fr.r == fr.w && fr.small && size > minReadBuffer:
		size = max(size/2, minReadBuffer)
	}
	if size != len(fr.buf) {
		nb := make([]byte, size)
		fr.w = copy(nb, fr.buf[fr.r:fr.w])
		fr.buf, fr.r = nb, 0
		return
	}
	fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
	fr.r = 0
}

// ReadFrame reads the next frame. I/O errors are returned as they are
// (io.EOF at a clean end, io.ErrUnexpectedEOF inside a frame); framing
// errors are *Error with code 501 FRAME_ERROR, and a heartbeat on a
// channel other than 0 is 505 UNEXPECTED_FRAME, as RabbitMQ has them.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if err := fr.fill(frameHeaderSize); err != nil {
		if fr.w > fr.r {
			return Frame{}, unexpectedEOF(err)
		}
		return Frame{}, err
	}
	hdr := fr.buf[fr.r : fr.r+frameHeaderSize]
	typ := hdr[0]
	ch := binary.BigEndian.Uint16(hdr[1:])
	size := binary.BigEndian.Uint32(hdr[3:])
	switch typ {
	case FrameMethod, FrameHeader, FrameBody:
	case FrameHeartbeat:
		if ch != 0 { // well framed, but not where it may be: RabbitMQ's 505
			return Frame{}, Errorf(UnexpectedFrame, "type 8, all octets = <<>>")
		}
	default:
		return Frame{}, Errorf(FrameError, "unknown frame type %d", typ)
	}
	if fr.max != 0 && uint64(size)+frameHeaderSize+1 > uint64(fr.max) {
		return Frame{}, Errorf(FrameError, "frame of %d bytes on channel %d is larger than the negotiated frame_max %d",
			uint64(size)+frameHeaderSize+1, ch, fr.max)
	}
	total := frameHeaderSize + int(size) + 1
	var frame []byte
	if total <= fr.maxBuf {
		for total > len(fr.buf) { // grow to hold the frame
			fr.grow = true
			fr.compact()
		}
		if err := fr.fill(total); err != nil {
			return Frame{}, unexpectedEOF(err)
		}
		frame = fr.buf[fr.r : fr.r+total]
		fr.r += total
	} else {
		if cap(fr.big) < total {
			fr.big = make([]byte, total)
		}
		frame = fr.big[:total]
		n := copy(frame, fr.buf[fr.r:fr.w])
		fr.r += n
		if _, err := io.ReadFull(fr.src, frame[n:]); err != nil {
			return Frame{}, unexpectedEOF(err)
		}
	}
	if end := frame[total-1]; end != FrameEnd {
		return Frame{}, Errorf(FrameError, "frame end byte 0x%02x, expected 0x%02x", end, FrameEnd)
	}
	if typ == FrameHeartbeat && size != 0 {
		return Frame{}, Errorf(FrameError, "type 8, all octets = %s: unknown_frame", erlangBinary(frame[frameHeaderSize:total-1]))
	}
	return Frame{Type: typ, Channel: ch, Payload: frame[frameHeaderSize : total-1]}, nil
}

// erlangBinary prints bytes as an Erlang binary, as RabbitMQ's errors
// show a frame: <<1,2,3>>.
func erlangBinary(b []byte) string {
	out := []byte("<<")
	for i, c := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendUint(out, uint64(c), 10)
	}
	return string(append(out, ">>"...))
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends a frame with the payload.
func AppendFrame(buf []byte, typ uint8, channel uint16, payload []byte) []byte {
	buf = append(buf, typ)
	buf = binary.BigEndian.AppendUint16(buf, channel)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	buf = append(buf, payload...)
	return append(buf, FrameEnd)
}

// AppendFrameHeader appends the 7-byte header of a frame whose payload of
// size bytes the caller writes next, followed by FrameEnd (for payloads
// sent from their own buffer, without a copy).
func AppendFrameHeader(buf []byte, typ uint8, channel uint16, size int) []byte {
	buf = append(buf, typ)
	buf = binary.BigEndian.AppendUint16(buf, channel)
	return binary.BigEndian.AppendUint32(buf, uint32(size))
}

// BodyChunk is the largest body payload of one frame under frameMax (0:
// no limit).
func BodyChunk(frameMax uint32, bodyLen int) int {
	if frameMax > frameHeaderSize+1 && uint64(bodyLen) > uint64(frameMax)-frameHeaderSize-1 {
		return int(frameMax) - frameHeaderSize - 1
	}
	return bodyLen
}

// beginFrame appends a frame header with a zero size and returns the offset
// of the size field for endFrame.
func beginFrame(buf []byte, typ uint8, channel uint16) ([]byte, int) {
	buf = append(buf, typ)
	buf = binary.BigEndian.AppendUint16(buf, channel)
	at := len(buf)
	return append(buf, 0, 0, 0, 0), at
}

// endFrame patches the size and appends the frame-end octet.
func endFrame(buf []byte, at int) []byte {
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return append(buf, FrameEnd)
}

// AppendMethodFrame appends a method frame.
func AppendMethodFrame(buf []byte, channel uint16, m Method) []byte {
	buf, at := beginFrame(buf, FrameMethod, channel)
	buf = AppendMethod(buf, m)
	return endFrame(buf, at)
}

// AppendHeaderFrame appends a content header frame.
func AppendHeaderFrame(buf []byte, channel uint16, classID uint16, bodySize uint64, p *Properties) []byte {
	buf, at := beginFrame(buf, FrameHeader, channel)
	buf = binary.BigEndian.AppendUint16(buf, classID)
	buf = append(buf, 0, 0) // weight
	buf = binary.BigEndian.AppendUint64(buf, bodySize)
	buf = p.Append(buf)
	return endFrame(buf, at)
}

// AppendBodyFrames appends body split into frames of at most frameMax
// bytes; an empty body appends nothing.
func AppendBodyFrames(buf []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := BodyChunk(frameMax, len(body))
	for len(body) > 0 {
		n := min(chunk, len(body))
		buf = AppendFrame(buf, FrameBody, channel, body[:n])
		body = body[n:]
	}
	return buf
}

// AppendHeartbeat appends a heartbeat frame.
func AppendHeartbeat(buf []byte) []byte {
	return append(buf, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}
