package events_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/carbondesk/carbondesk/internal/events"
)

// TestNewEncoded: an event built from the state's bytes carries the same
// payload (type URL and value) as one that marshals the state itself.
func TestNewEncoded(t *testing.T) {
	state := wrapperspb.String("湖北碳排放权质押贷款")
	now := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	actor := events.Actor{Subject: "u1", Role: "staff"}
	plain, err := events.New("carbondesk.test.thing.changed", "t1", 3, actor, now, state)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := events.NewEncoded("carbondesk.test.thing.changed", "t1", 3, actor, now, state, wire)
	if err != nil {
		t.Fatal(err)
	}
	a, err := events.Decode(plain.Data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.Decode(enc.Data)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetPayload().GetTypeUrl() != b.GetPayload().GetTypeUrl() {
		t.Errorf("type URL %q, want %q", b.GetPayload().GetTypeUrl(), a.GetPayload().GetTypeUrl())
	}
	got := &wrapperspb.StringValue{}
	if err := b.GetPayload().UnmarshalTo(got); err != nil || got.GetValue() != state.GetValue() {
		t.Errorf("payload %q (%v), want %q", got.GetValue(), err, state.GetValue())
	}
	if b.GetType() != "test.thing.changed" || b.GetEntityId() != "t1" || b.GetEntityVersion() != 3 || !b.GetTime().AsTime().Equal(now) {
		t.Errorf("envelope %v", b)
	}
	if _, err := events.NewEncoded("elsewhere.thing", "t1", 1, actor, now, state, wire); err == nil {
		t.Error("a subject without the carbondesk. prefix was accepted")
	}
}
