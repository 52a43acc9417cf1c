package server

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// durationsAsText returns v for /config with every time.Duration in it as
// a Go duration string ("30s", "1m30s"), the way the user writes it in
// HCL, instead of encoding/json's nanoseconds (30000000000). Everything
// else encodes as encoding/json encodes v itself: fields in declaration
// order under their json names, with omitempty and "-" honoured. Only
// the parts of v whose type holds a Duration are rebuilt; the rest is
// handed to encoding/json as it is.
func durationsAsText(v any) any {
	return textDurations(reflect.ValueOf(v))
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func textDurations(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if t == durationType {
		return time.Duration(v.Int()).String()
	}
	if !holdsDuration(t, map[reflect.Type]bool{}) {
		return v.Interface()
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return textDurations(v.Elem())
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = textDurations(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		// holdsDuration admits string keys only: encoding/json sorts them.
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = textDurations(it.Value())
		}
		return out
	case reflect.Struct:
		o := &object{}
		o.addFields(v)
		return o
	}
	return v.Interface()
}

// holdsDuration reports whether a value of type t may contain a
// time.Duration that encoding/json would write as a number. A type with
// its own MarshalJSON or MarshalText encodes itself; seen stops recursive
// types.
func holdsDuration(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == durationType {
		return true
	}
	if seen[t] || t.Implements(marshalerType) || t.Implements(textMarshaler) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsDuration(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String && holdsDuration(t.Elem(), seen)
	case reflect.Interface:
		return true // decided by the dynamic value
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" && holdsDuration(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// object is a JSON object whose keys keep the order they were added in,
// as encoding/json keeps a struct's field order.
type object struct {
	keys []string
	vals []any
}

// addFields adds the fields of struct v as encoding/json would encode
// them; an untagged embedded struct's fields are inlined.
func (o *object) addFields(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				ft, fv = ft.Elem(), fv.Elem()
			}
			if ft.Kind() == reflect.Struct {
				o.addFields(fv)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if hasOpt(opts, "omitempty") && emptyValue(fv) || hasOpt(opts, "omitzero") && fv.IsZero() {
			continue
		}
		o.keys = append(o.keys, name)
		o.vals = append(o.vals, textDurations(fv))
	}
}

func hasOpt(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// emptyValue is encoding/json's omitempty test.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	// Not json.Marshal: it would escape "<redacted>" as \u003c..., and
	// the outer encoder (writeJSON, SetEscapeHTML(false)) keeps a
	// Marshaler's escapes as they are.
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := enc.Encode(o.vals[i]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil // Encode's newlines are whitespace the outer encoder drops
}
