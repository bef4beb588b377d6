// Package protoenum reads generated proto enums by their short names: the
// value name without the prefix all of the enum's names share
// (INSTITUTION_KIND_BANK is BANK). Services use it to parse, list and
// validate the enums their domain types wrap; the wrapping types themselves
// live with each service.
package protoenum

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Enum is a generated proto enum type.
type Enum interface {
	~int32
	Descriptor() protoreflect.EnumDescriptor
	Number() protoreflect.EnumNumber
}

// Key is a value's name without the enum's prefix:
// INSTITUTION_KIND_BANK -> BANK. Zero and undefined numbers give "".
func Key[P Enum](p P) string {
	if p == 0 {
		return ""
	}
	v := p.Descriptor().Values().ByNumber(p.Number())
	if v == nil {
		return ""
	}
	return strings.TrimPrefix(string(v.Name()), Prefix(p.Descriptor()))
}

// Prefix is the prefix shared by an enum's value names, taken from its
// zero value: INSTITUTION_KIND_UNSPECIFIED -> INSTITUTION_KIND_.
func Prefix(d protoreflect.EnumDescriptor) string {
	return strings.TrimSuffix(string(d.Values().ByNumber(0).Name()), "UNSPECIFIED")
}

// Parse reads a value by its short or full name, in any case. "" parses as
// zero (not set); an unknown name is an error listing the known ones.
func Parse[P Enum](s string) (P, error) {
	var zero P
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return zero, nil
	}
	d := zero.Descriptor()
	prefix := Prefix(d)
	vals := d.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if v.Number() == 0 {
			continue
		}
		if name := string(v.Name()); name == s || name == prefix+s {
			return P(v.Number()), nil
		}
	}
	return zero, fmt.Errorf("unknown value %q; known: %s", s, strings.Join(Keys[P](), ", "))
}

// Keys lists the short names of an enum's values in proto order, zero left
// out.
func Keys[P Enum]() []string {
	var keys []string
	for _, p := range All(func(p P) P { return p }) {
		keys = append(keys, Key(p))
	}
	return keys
}

// All lists an enum's values in proto order, zero left out, each wrapped.
func All[P Enum, T any](wrap func(P) T) []T {
	var zero P
	vals := zero.Descriptor().Values()
	out := make([]T, 0, vals.Len()-1)
	for i := range vals.Len() {
		if n := vals.Get(i).Number(); n != 0 {
			out = append(out, wrap(P(n)))
		}
	}
	return out
}

// Known is p when the proto defines it, else zero.
func Known[P Enum](p P) P {
	if p.Descriptor().Values().ByNumber(p.Number()) == nil {
		return 0
	}
	return p
}

// Strings is the String of each value, for messages that list them.
func Strings[T fmt.Stringer](vals []T) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.String()
	}
	return out
}
