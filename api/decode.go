package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/openvpc/openvpc/model"
)

// readBody reads a request body of at most s.maxBody bytes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, tooLarge(s.maxBody)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(s.maxBody)
		}
		return nil, invalid("", "reading request body: %v", err)
	}
	return data, nil
}

// decodeBody reads and strictly decodes a JSON request body into v.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// decodeJSON decodes exactly one JSON value into v, rejecting unknown
// fields, wrong types and trailing data with 400 errors naming the field.
func decodeJSON(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("", "request body is empty, want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("", "unexpected data after the JSON object")
	}
	return nil
}

// withoutFields returns a JSON object body without the named top-level
// fields; anything else (not an object, malformed) is returned as it is,
// for decodeJSON to report.
func withoutFields(data []byte, fields []string) []byte {
	if len(fields) == 0 {
		return data
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil || m == nil {
		return data
	}
	found := false
	for _, f := range fields {
		if _, ok := m[f]; ok {
			delete(m, f)
			found = true
		}
	}
	if !found {
		return data
	}
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

func jsonError(err error, target reflect.Type) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalid("", "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "malformed JSON: unexpected end of input")
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid("", "want %s, got a JSON %s", describeType(target), te.Value)
		}
		return invalid(te.Field, "%s: want %s, got %s", te.Field, describeType(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return invalid(name, "unknown field %q", name)
	}
	return invalid("", "malformed JSON: %v", err)
}

// describeType names a Go type the way a JSON user thinks of it.
func describeType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return fmt.Sprintf("an integer from 0 to %d", uint64(1)<<(t.Bits()-1)*2-1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return "an integer"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// isJSONContent reports whether a body should be read as JSON (else YAML):
// by Content-Type, else by its first character.
func isJSONContent(r *http.Request, data []byte) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			return true
		case strings.Contains(mt, "yaml"):
			return false
		}
	}
	t := bytes.TrimSpace(data)
	return len(t) > 0 && t[0] == '{'
}

var yamlFieldRE = regexp.MustCompile(`field (\S+) not found in type`)

// decodePolicy decodes a policy document in JSON or YAML, strictly.
func decodePolicy(r *http.Request, data []byte) (*model.Policy, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("", "request body is empty, want a policy document")
	}
	if isJSONContent(r, data) {
		var p model.Policy
		if err := decodeJSON(data, &p); err != nil {
			return nil, err
		}
		return &p, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p model.Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return &p, nil
		}
		e := invalid("", "malformed policy document: %v", err)
		if m := yamlFieldRE.FindStringSubmatch(err.Error()); m != nil {
			e.Field = m[1]
		}
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalid("", "want one policy document, got more")
	}
	return &p, nil
}
