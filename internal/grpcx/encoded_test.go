package grpcx_test

import (
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/carbondesk/carbondesk/internal/grpcx"
)

// TestEncoded: the server codec sends an Encoded's own bytes (the same
// backing array: encoded once, not again per stream), they decode to the
// message, and a codec that knows nothing of Encoded still marshals it as
// the message it embeds.
func TestEncoded(t *testing.T) {
	m := wrapperspb.String("碳金融 watch change")
	e, err := grpcx.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	c := grpcx.NewCodec()
	a, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	ab, bb := a.Materialize(), b.Materialize()
	if len(a) != 1 || len(b) != 1 || &a[0].ReadOnlyData()[0] != &b[0].ReadOnlyData()[0] {
		t.Error("two sends of one Encoded did not share its bytes: it was marshalled again")
	}
	for name, wire := range map[string][]byte{"first": ab, "second": bb} {
		got := &wrapperspb.StringValue{}
		if err := proto.Unmarshal(wire, got); err != nil || got.GetValue() != m.GetValue() {
			t.Errorf("%s send decodes to %q (%v), want %q", name, got.GetValue(), err, m.GetValue())
		}
	}

	plain, err := encoding.GetCodecV2("proto").Marshal(e)
	if err != nil {
		t.Fatalf("the plain proto codec cannot marshal an Encoded: %v", err)
	}
	got := &wrapperspb.StringValue{}
	if err := proto.Unmarshal(plain.Materialize(), got); err != nil || got.GetValue() != m.GetValue() {
		t.Errorf("plain codec: decodes to %q (%v), want %q", got.GetValue(), err, m.GetValue())
	}

	// Anything else goes through the proto codec as usual.
	o, err := c.Marshal(wrapperspb.Int64(42))
	if err != nil {
		t.Fatal(err)
	}
	n := &wrapperspb.Int64Value{}
	if err := proto.Unmarshal(o.Materialize(), n); err != nil || n.GetValue() != 42 {
		t.Errorf("plain message: %d (%v), want 42", n.GetValue(), err)
	}
}

// TestFrameCodec: a response received into a Frame is its bytes, untouched;
// into a message, it is decoded as usual.
func TestFrameCodec(t *testing.T) {
	m := wrapperspb.String("武汉 demand")
	wire, err := grpcx.FrameCodec{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var f grpcx.Frame
	if err := (grpcx.FrameCodec{}).Unmarshal(wire, &f); err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(m)
	if string(f) != string(want) {
		t.Errorf("frame %x, want %x", []byte(f), want)
	}
	got := &wrapperspb.StringValue{}
	if err := (grpcx.FrameCodec{}).Unmarshal(wire, got); err != nil || got.GetValue() != m.GetValue() {
		t.Errorf("decoded %q (%v), want %q", got.GetValue(), err, m.GetValue())
	}
}
