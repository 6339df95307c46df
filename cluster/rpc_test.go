package cluster

import (
	"errors"
	"reflect"
	"testing"
)

// TestReplyCodecData round-trips replies that carry data (peer queries'
// answers), with and without an error, and an empty answer.
func TestReplyCodecData(t *testing.T) {
	for _, r := range []reply{
		{status: statusOK, data: []byte(`[{"name":"c1"}]`)},
		{status: statusOK, data: []byte{}},
		{status: statusFailed, err: errors.New("no handler"), data: []byte("x")},
	} {
		got, err := decodeReply(encodeReply(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	if _, err := decodeReply(append(encodeReply(nil, reply{status: statusOK}), 9)); err == nil {
		t.Error("a reply with truncated data decoded")
	}
}
