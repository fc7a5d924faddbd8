package sessions

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
)

// makePaired creates id with a saved (paired) device and closes it.
func makePaired(t testing.TB, s *Store, id, user string) {
	t.Helper()
	ctx := contextBackground()
	if _, err := s.Create(NewAccount{ID: id, Phone: "+" + user}); err != nil {
		t.Fatal(err)
	}
	d, err := s.OpenDevice(ctx, id, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	jid := types.JID{User: user, Device: 2, Server: types.DefaultUserServer}
	d.Store.ID = &jid
	d.Store.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := d.Container.PutDevice(ctx, d.Store); err != nil {
		t.Fatal(err)
	}
}

func hexID(c byte) string { return "account_prod_" + strings.Repeat(string(c), 32) }

type fileState struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

// snapshot records every path under root, to prove inventory changed nothing.
func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = fileState{fi.Mode(), fi.Size(), fi.ModTime()}
		return nil
	})
	return out
}

func TestInventoryReportsEverythingAndChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := contextBackground()
	s, _ := newStore(t)
	root := s.Root()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	paired, unpaired, emptyDB, garbage, truncated := hexID('1'), hexID('2'), hexID('3'), hexID('4'), hexID('5')
	noMeta, legacy, badMeta, loose := hexID('6'), "account_dev_old42", hexID('7'), hexID('8')
	makePaired(t, s, paired, "40711111111")
	mustCreate(t, s, unpaired)
	mustCreate(t, s, emptyDB)
	write(filepath.Join(emptyDB, dbFile), "")
	mustCreate(t, s, garbage)
	write(filepath.Join(garbage, dbFile), strings.Repeat("\x00garbage", 4096))
	makePaired(t, s, truncated, "40755555555")
	tp := filepath.Join(root, truncated, dbFile)
	st, _ := os.Stat(tp)
	if err := os.Truncate(tp, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	makePaired(t, s, noMeta, "40766666666")
	os.Remove(filepath.Join(root, noMeta, metadataFile))
	write(filepath.Join(legacy, "creds.json"), `{}`)
	write(filepath.Join(legacy, "pre-key-1.json"), `{}`)
	write(filepath.Join(legacy, "session-40700.0.json"), `{}`)
	mustCreate(t, s, badMeta)
	write(filepath.Join(badMeta, metadataFile), `{"schemaVersion":1,"accou`)
	mustCreate(t, s, loose)
	os.Chmod(filepath.Join(root, loose), 0o755)
	write(filepath.Join(loose, ".tmp-account.json.abc"), "{")
	write(filepath.Join(loose, "notes.txt"), "hi")
	write("stray.txt", "x")
	write(".tmp-probe.0011", "")
	write("Not An Id/creds.json", "{}")
	write("backup/readme", "x")
	write("_orphaned/account_prod_x/creds.json", "{}")
	write("_orphaned/other/file", "x")
	write("removed/20260101T000000Z-"+hexID('9')+"/account.json", "{}")
	os.Symlink("/etc", filepath.Join(root, "link"))

	before := snapshot(t, root)
	inv, err := s.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, root)
	for p, b := range before {
		if a, ok := after[p]; !ok || a != b {
			t.Errorf("inventory changed %s: %+v -> %+v", p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("inventory created %s", p)
		}
	}

	byID := map[string]AccountStatus{}
	for _, a := range inv.Accounts {
		byID[a.ID] = a
	}
	expect := map[string]StoreState{
		paired: StorePaired, unpaired: StoreMissing, emptyDB: StoreUnpaired, garbage: StoreCorrupt,
		truncated: StoreCorrupt, noMeta: StorePaired, legacy: StoreMissing, badMeta: StoreMissing, loose: StoreMissing,
	}
	for id, want := range expect {
		if got := byID[id].Store; got != want {
			t.Errorf("%s store = %q (%s), want %q", id, got, byID[id].StoreError, want)
		}
	}
	if byID[paired].DeviceJID != "40711111111:2@s.whatsapp.net" || byID[paired].Account == nil || byID[paired].Account.Phone != "+40711111111" {
		t.Errorf("paired account: %+v", byID[paired])
	}
	if !byID[legacy].Legacy || byID[noMeta].Account != nil {
		t.Errorf("legacy=%+v noMeta=%+v", byID[legacy], byID[noMeta])
	}
	want := Counts{
		AccountDirs: 9, Paired: 2, Unpaired: 5, Corrupt: 2, MissingMetadata: 2, // noMeta and legacy
		LegacyBaileys: 3, StrayFiles: 3, BadDirNames: 2, Removed: 1,
	}
	if inv.Counts != want {
		t.Errorf("counts = %+v\nwant     %+v", inv.Counts, want)
	}

	kinds := map[ProblemKind][]string{}
	for _, p := range inv.Problems {
		rel, _ := filepath.Rel(root, p.Path)
		kinds[p.Kind] = append(kinds[p.Kind], rel)
		if p.Detail == "" {
			t.Errorf("problem without detail: %+v", p)
		}
	}
	wantKinds := map[ProblemKind][]string{
		ProblemStrayFile:       {"link", filepath.Join(loose, "notes.txt"), "stray.txt"},
		ProblemBadDirName:      {"Not An Id", "backup"},
		ProblemCorruptStore:    {filepath.Join(garbage, dbFile), filepath.Join(truncated, dbFile)},
		ProblemMissingMetadata: {filepath.Join(legacy, metadataFile), filepath.Join(noMeta, metadataFile)},
		ProblemBadMetadata:     {filepath.Join(badMeta, metadataFile)},
		ProblemLoosePerms:      {loose},
		ProblemTempLeftover:    {".tmp-probe.0011", filepath.Join(loose, ".tmp-account.json.abc")},
		ProblemLegacyOrphaned:  {"_orphaned"},
	}
	for k, paths := range wantKinds {
		if !sameSet(kinds[k], paths) {
			t.Errorf("%s problems = %v, want %v", k, kinds[k], paths)
		}
	}
	for k := range kinds {
		if _, ok := wantKinds[k]; !ok {
			t.Errorf("unexpected %s problems: %v", k, kinds[k])
		}
	}

	// List gives the same accounts without the deep check; the truncated
	// store may or may not look damaged without it, so only compare ids.
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(inv.Accounts) {
		t.Fatalf("List has %d accounts, Inventory %d", len(list), len(inv.Accounts))
	}
	for i := range list {
		if list[i].ID != inv.Accounts[i].ID {
			t.Fatalf("List order differs at %d", i)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestInventoryUnreadableAccountDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads through 0000 directories")
	}
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	os.Chmod(s.Dir(testID), 0)
	defer os.Chmod(s.Dir(testID), 0o700)
	inv, err := s.Inventory(contextBackground())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Counts.Unreadable != 1 || inv.Accounts[0].Store != StoreUnreadable {
		t.Fatalf("inventory: %+v", inv)
	}
}
