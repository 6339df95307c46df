package amqp

import (
	"bytes"
	"testing"
)

// chunkReader returns its chunks one per Read call.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, nil
	}
	n := copy(p, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

func TestReadBufferFollowsTheTraffic(t *testing.T) {
	frame := AppendFrame(nil, FrameBody, 1, bytes.Repeat([]byte("x"), 1000)) // 1008 bytes
	var burst []byte
	for i := 0; i < 200; i++ {
		burst = append(burst, frame...)
	}
	src := &chunkReader{chunks: [][]byte{burst}}
	fr := NewFrameReader(src, 64<<10)
	for i := 0; i < 200; i++ {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(fr.buf); got != 64<<10 {
		t.Fatalf("buffer after a 200 KB burst = %d, want the 64 KiB maximum", got)
	}
	// Reads that end on a frame boundary while busy keep the buffer.
	src.chunks = [][]byte{burst[:64*len(frame)]}
	for i := 0; i < 64; i++ {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(fr.buf); got != 64<<10 {
		t.Fatalf("buffer shrank to %d while reads kept filling it", got)
	}
	// Quiet traffic (one small frame per read) halves it back to 4 KiB.
	small := AppendFrame(nil, FrameBody, 1, []byte("hi"))
	for i := 0; i < 10; i++ {
		src.chunks = [][]byte{small}
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(fr.buf); got != minReadBuffer {
		t.Fatalf("buffer after quiet reads = %d, want %d", got, minReadBuffer)
	}
}
