package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

type fileKey struct {
	key  string
	line int
}

// sections are the keys that hold mappings rather than values.
var sections = map[string]bool{"log": true, "http": true, "sessions": true, "store": true, "store.firestore": true, "whatsapp": true, "daemon": true, "api": true, "outbox": true, "lock": true}

// fileKeys lists the dotted leaf keys of a YAML config file with their line
// numbers, so that an unknown or misplaced key is reported where it stands.
func fileKeys(name string, data []byte) ([]fileKey, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the file must be a mapping of keys (key: value)", root.Line)
	}
	var out []fileKey
	var walk func(prefix string, n *yaml.Node) error
	walk = func(prefix string, n *yaml.Node) error {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			switch {
			case sections[key] && val.Kind == yaml.MappingNode:
				if err := walk(key, val); err != nil {
					return err
				}
			case sections[key]:
				return fmt.Errorf("line %d: %s must be a section (a mapping of keys), not a value", k.Line, key)
			default:
				out = append(out, fileKey{key: key, line: k.Line})
			}
		}
		return nil
	}
	if err := walk("", root); err != nil {
		return nil, err
	}
	return out, nil
}
