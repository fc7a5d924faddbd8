package faulttest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/pkg/lock"
)

// writes records every version of the account documents and of the lease
// document that Firestore accepted, through snapshot listeners (which may
// coalesce versions written within one snapshot, never reorder them).
type writes struct {
	mu       sync.Mutex
	accounts map[string][]acctVersion
	lease    []leaseVersion
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

type acctVersion struct {
	at       time.Time
	epoch    int64
	instance string
}

type leaseVersion struct {
	at     time.Time
	epoch  int64
	holder string
}

func watchWrites(t *testing.T, client *firestore.Client) *writes {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writes{accounts: map[string][]acctVersion{}, cancel: cancel}
	w.done.Add(2)
	go func() {
		defer w.done.Done()
		it := client.Collection("accounts").Snapshots(ctx)
		defer it.Stop()
		for {
			snap, err := it.Next()
			if err != nil {
				return
			}
			for _, ch := range snap.Changes {
				if ch.Kind == firestore.DocumentRemoved {
					continue
				}
				d := ch.Doc.Data()
				v := acctVersion{at: ch.Doc.UpdateTime, epoch: asInt(d["leaseEpoch"])}
				if wk, ok := d["worker"].(map[string]any); ok {
					v.instance, _ = wk["instanceId"].(string)
				}
				w.mu.Lock()
				w.accounts[ch.Doc.Ref.ID] = append(w.accounts[ch.Doc.Ref.ID], v)
				w.mu.Unlock()
			}
		}
	}()
	go func() {
		defer w.done.Done()
		it := client.Doc(leaseDoc).Snapshots(ctx)
		defer it.Stop()
		for {
			snap, err := it.Next()
			if err != nil {
				return
			}
			if !snap.Exists() {
				continue
			}
			d := snap.Data()
			h, _ := d["holderInstanceId"].(string)
			h, _ = lock.InstanceOfHolder(h) // wactl writes wactl:<instance id>
			w.mu.Lock()
			w.lease = append(w.lease, leaseVersion{at: snap.UpdateTime, epoch: asInt(d["epoch"]), holder: h})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writes) stop() {
	w.cancel()
	w.done.Wait()
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func (w *writes) accountVersions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, vs := range w.accounts {
		n += len(vs)
	}
	return n
}

func (w *writes) leaseVersions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lease)
}

// deposedWrites lists account writes Firestore accepted from a writer whose
// epoch was already superseded: an epoch lower than one the document had
// before, or a writer that is not the holder the lease named for that
// epoch.
func (w *writes) deposedWrites() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	holders := map[int64]map[string]bool{}
	for _, l := range w.lease {
		if l.epoch != 0 && l.holder != "" {
			if holders[l.epoch] == nil {
				holders[l.epoch] = map[string]bool{}
			}
			holders[l.epoch][l.holder] = true
		}
	}
	var out []string
	for e, hs := range holders {
		if len(hs) > 1 {
			// The fence cannot tell the two apart: the deposed one's
			// writes pass until it notices.
			out = append(out, fmt.Sprintf("lease epoch %d was given to %d holders %v: fenced writes cannot tell them apart", e, len(hs), hs))
		}
	}
	for id, vs := range w.accounts {
		var high int64
		for _, v := range vs {
			if v.epoch == 0 {
				continue
			}
			if v.epoch < high {
				out = append(out, fmt.Sprintf("account %s: write at %s under epoch %d after epoch %d (writer %s)",
					id, v.at.Format(time.RFC3339Nano), v.epoch, high, v.instance))
			}
			high = max(high, v.epoch)
			if hs, ok := holders[v.epoch]; ok && v.instance != "" && !hs[v.instance] {
				out = append(out, fmt.Sprintf("account %s: write at %s under epoch %d by %s, but the lease gave epoch %d to %v",
					id, v.at.Format(time.RFC3339Nano), v.epoch, v.instance, v.epoch, hs))
			}
		}
	}
	return out
}

// loginsByNonHolder lists logins (of wactl processes, tagged by instance
// id) at a moment when the lease document named another holder.
type login struct {
	at   time.Time
	what string
}

func (w *writes) loginsByNonHolder(recs []wafake.ConnRecord) []login {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []login
	for _, r := range recs {
		if r.LoggedIn.IsZero() || r.Client == "" {
			continue
		}
		holder, at := "", time.Time{}
		for _, l := range w.lease {
			if !l.at.After(r.LoggedIn) {
				holder, at = l.holder, l.at
			}
		}
		if holder != r.Client {
			out = append(out, login{r.LoggedIn, fmt.Sprintf("connection %d of %s logged in at %s while the lease (written %s) named %q",
				r.ID, r.Client, r.LoggedIn.Format("15:04:05.000"), at.Format("15:04:05.000"), holder)})
		}
	}
	return out
}
