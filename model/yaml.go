package model

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// ParseYAML decodes a policy document. Unknown fields are errors, so a typo
// never silently drops intent.
func ParseYAML(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return &p, nil
		}
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &p, nil
}

// ToYAML encodes a policy document.
func (p *Policy) ToYAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return buf.Bytes(), nil
}
