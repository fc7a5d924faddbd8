package audit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// Every query the audit runs (all threads, one account, one thread) must
// be served by an index listed in configs/firestore.indexes.json: the
// emulator does not enforce indexes, production does.
func TestFirestoreIndexesFileComplete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, project := fsemu.NewClient(t)
	if err := audittest.WriteFirestore(ctx, c, audittest.Legacy(now)); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []audit.Selection{
		seedSel(audit.KeyAuto),
		{Window: 48 * 3600e9, Limit: 500, AccountID: audittest.Account, Key: audit.KeyAuto, Now: now},
		{Window: 48 * 3600e9, Limit: 500, ThreadID: audittest.ThreadA, Key: audit.KeyAuto, Now: now},
	} {
		if _, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel}); err != nil {
			t.Fatal(err)
		}
	}
	// fsemu.IndexUsage omits the database parameter this emulator
	// version requires (it answers 400), so the report is fetched here.
	raw, err := indexUsage(fsemu.Host(t), project)
	if err != nil {
		t.Fatal(err)
	}
	var usage struct {
		Error   any `json:"error"`
		Reports []struct {
			Index struct {
				Name       string `json:"name"`
				QueryScope string `json:"queryScope"`
				Fields     []struct {
					FieldPath string `json:"fieldPath"`
					Order     string `json:"order"`
				} `json:"fields"`
			} `json:"index"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(raw, &usage); err != nil || usage.Error != nil || len(usage.Reports) == 0 {
		t.Fatalf("index usage %s: %v", raw, err)
	}
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "configs", "firestore.indexes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Indexes []struct {
			CollectionGroup string `json:"collectionGroup"`
			QueryScope      string `json:"queryScope"`
			Fields          []struct {
				FieldPath string `json:"fieldPath"`
				Order     string `json:"order"`
			} `json:"fields"`
		} `json:"indexes"`
		FieldOverrides []struct {
			CollectionGroup string `json:"collectionGroup"`
			FieldPath       string `json:"fieldPath"`
			Indexes         []struct {
				Order      string `json:"order"`
				QueryScope string `json:"queryScope"`
			} `json:"indexes"`
		} `json:"fieldOverrides"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ix := range cfg.Indexes {
		k := ix.CollectionGroup + "|" + ix.QueryScope
		for _, f := range ix.Fields {
			k += "|" + f.FieldPath + ":" + f.Order
		}
		have[k] = true
	}
	// A single-field report is served by a field override (collection
	// group single-field indexes are not automatic).
	for _, fo := range cfg.FieldOverrides {
		for _, ix := range fo.Indexes {
			have[fo.CollectionGroup+"|"+ix.QueryScope+"|"+fo.FieldPath+":"+ix.Order] = true
		}
	}
	for _, r := range usage.Reports {
		ix := r.Index
		// name: projects/p/databases/(default)/collectionGroups/messages/indexes/_
		group := filepath.Base(filepath.Dir(filepath.Dir(ix.Name)))
		k := group + "|" + ix.QueryScope
		for _, f := range ix.Fields {
			if f.FieldPath == "__name__" {
				continue
			}
			k += "|" + f.FieldPath + ":" + f.Order
		}
		if !have[k] {
			t.Errorf("the emulator reports a query needing index %s, missing from configs/firestore.indexes.json", k)
		}
	}
}

func indexUsage(host, project string) ([]byte, error) {
	resp, err := http.Get("http://" + host + "/emulator/v1/projects/" + project +
		":indexUsage?database=projects/" + project + "/databases/(default)")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
