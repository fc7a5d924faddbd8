package cleanup

import (
	"context"
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/audit"
)

var now = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

func seedSel() audit.Selection {
	return audit.Selection{Window: 48 * time.Hour, Limit: 500, Key: audit.KeyAuto, Now: now}
}

type state struct {
	msgs    map[string]map[string]any
	threads map[string]map[string]any
}

func snapshot(t *testing.T, c *firestore.Client) state {
	t.Helper()
	ctx := context.Background()
	s := state{msgs: map[string]map[string]any{}, threads: map[string]map[string]any{}}
	docs, err := c.CollectionGroup("messages").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		s.msgs[d.Ref.Parent.Parent.ID+"/"+d.Ref.ID] = d.Data()
	}
	ths, err := c.Collection("threads").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ths {
		s.threads[d.Ref.ID] = d.Data()
	}
	return s
}

// marks is each message's isDuplicate/duplicateOf: the outcome of a run
// independent of when it ran.
func (s state) marks() map[string][2]any {
	out := map[string][2]any{}
	for p, m := range s.msgs {
		out[p] = [2]any{m["isDuplicate"], m["duplicateOf"]}
	}
	return out
}

func (s state) countMarked() int {
	n := 0
	for _, m := range s.msgs {
		if m["isDuplicate"] == true {
			n++
		}
	}
	return n
}

func equalState(t *testing.T, what string, a, b state) {
	t.Helper()
	if len(a.msgs) != len(b.msgs) {
		t.Fatalf("%s: %d messages vs %d", what, len(a.msgs), len(b.msgs))
	}
	for p, m := range a.msgs {
		if !reflect.DeepEqual(m, b.msgs[p]) {
			t.Fatalf("%s: message %s differs:\n%v\n%v", what, p, m, b.msgs[p])
		}
	}
	if !reflect.DeepEqual(a.threads, b.threads) {
		t.Fatalf("%s: threads differ:\n%v\n%v", what, a.threads, b.threads)
	}
}

type firestoreClient struct{ c *firestore.Client }
