package firestore

import "github.com/wactl/wactl/pkg/store"

// MessageDocument exposes the document a new message gets, for the raw
// BulkWriter baseline of the benchmarks.
func MessageDocument(m *store.Message) map[string]any { return messageDoc(m, msgTime(m, m.TsClient)) }
