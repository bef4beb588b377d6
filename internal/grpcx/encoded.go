package grpcx

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	// The proto codec registers itself; Codec delegates to it.
	_ "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Encoded is a message marshalled once, to be sent on many streams: a
// change fanned out to a thousand watchers is encoded once instead of once
// per watcher. It is still the message (it embeds it), so a server without
// Codec marshals it the ordinary way; with Codec (every server New builds)
// its bytes go out as they are. Streams only read the bytes: one Encoded
// may be sent on any number of streams at once.
type Encoded struct {
	proto.Message
	wire []byte
}

// Encode marshals m once.
func Encode(m proto.Message) (*Encoded, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("grpcx: encode %T: %w", m, err)
	}
	return &Encoded{Message: m, wire: b}, nil
}

// Codec is the server codec New installs: the standard proto codec, except
// that an *Encoded goes out as the bytes it holds.
type Codec struct{ proto encoding.CodecV2 }

// NewCodec wraps the registered proto codec.
func NewCodec() Codec { return Codec{proto: encoding.GetCodecV2("proto")} }

// Marshal returns an *Encoded's bytes, and marshals anything else.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*Encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e.wire)}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal is the proto codec's.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// Name is "proto": the wire format is the proto codec's.
func (c Codec) Name() string { return "proto" }

// Frame is a received message left undecoded (see FrameCodec).
type Frame []byte

// FrameCodec is a client codec for callers that read only a field or two
// of a response (load generators, benchmarks sharing the server's cores):
// requests are marshalled as proto, and a response received into a *Frame
// is handed over undecoded; anything else is unmarshalled as usual. Use it
// per call with grpc.ForceCodecV2.
type FrameCodec struct{}

// Marshal is the proto codec's.
func (FrameCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

// Unmarshal copies the bytes into a *Frame, or unmarshals as proto.
func (FrameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*Frame); ok {
		*f = data.Materialize()
		return nil
	}
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

// Name is "proto": the wire format is the proto codec's.
func (FrameCodec) Name() string { return "proto" }
