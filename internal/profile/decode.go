package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// decode parses a YAML profile into p. Problems in the document itself
// (unknown fields, wrong types) come back as FieldErrors with their paths.
func decode(data []byte, p *Profile) []FieldError {
	js, err := yaml.YAMLToJSONStrict(data) // a key given twice is an error
	if err != nil {
		return []FieldError{{Path: "(document)", Message: err.Error()}}
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return []FieldError{{Path: "(document)", Message: err.Error()}}
	}
	if _, ok := generic.(map[string]any); !ok {
		return []FieldError{{Path: "(document)", Message: "must be a mapping with apiVersion, kind, metadata and spec"}}
	}
	var errs []FieldError
	unknownFields(generic, reflect.TypeOf(Profile{}), "", &errs)
	if len(errs) > 0 {
		return errs
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return []FieldError{{Path: te.Field, Message: fmt.Sprintf("must be a %s, not a %s", kindName(te.Type), te.Value)}}
		}
		return []FieldError{{Path: "(document)", Message: err.Error()}}
	}
	return nil
}

// unknownFields walks a decoded document beside the Go type it must fit
// and reports every key the type does not have.
func unknownFields(v any, t reflect.Type, path string, errs *[]FieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			fields[name] = t.Field(i).Type
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				*errs = append(*errs, FieldError{Path: join(path, k), Message: "unknown field"})
				continue
			}
			unknownFields(m[k], ft, join(path, k), errs)
		}
	case reflect.Slice:
		if items, ok := v.([]any); ok {
			for i, item := range items {
				unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice:
		return "list"
	case reflect.Map, reflect.Struct:
		return "mapping"
	case reflect.Int64, reflect.Int:
		return "number"
	default:
		return t.String()
	}
}
