package config

import (
	"fmt"
	"reflect"
	"time"
)

// Entry is one line of `wactl config show`.
type Entry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source Source `json:"source"`
	Detail string `json:"detail,omitempty"`
	Secret bool   `json:"secret,omitempty"`
}

// Redacted is shown instead of a secret's value.
const Redacted = "[redacted]"

// Entries lists every key with its effective value and origin; secrets are
// redacted (an unset secret shows as empty so the operator sees it is unset).
func (l *Loaded) Entries() []Entry {
	vals := flatten(reflect.ValueOf(l.Config), "")
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		v := vals[k.Key]
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		if k.Secret && fmt.Sprint(v) != "" {
			v = Redacted
		}
		o := l.Origins[k.Key]
		out = append(out, Entry{Key: k.Key, Value: v, Source: o.Source, Detail: o.Detail, Secret: k.Secret})
	}
	return out
}

// flatten maps dotted mapstructure keys to field values.
func flatten(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("mapstructure")
		if prefix != "" {
			name = prefix + "." + name
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			for k, x := range flatten(f, name) {
				out[k] = x
			}
			continue
		}
		out[name] = f.Interface()
	}
	return out
}
