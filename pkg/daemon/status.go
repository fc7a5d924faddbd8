package daemon

import (
	"time"

	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/store"
)

// Status is one consistent snapshot of everything the health routes,
// systemd's STATUS= line, metrics and doctor report. The daemon builds it
// from the lease, the account manager and the store; handlers only render.
type Status struct {
	Now       time.Time
	StartedAt time.Time

	Service    string
	Version    string
	Commit     string
	InstanceID string

	// Lease
	WAMode           string // active | passive
	LockStatus       string // held_by_this_instance | held_by_other | not_held | unknown
	LockHolder       string
	LockRemaining    time.Duration
	LeaseUntil       time.Time
	LockEpoch        int64
	PassiveReason    string
	LockRenewalError string

	// Storage
	SessionsPath        string
	SessionsDirWritable bool
	SessionsError       string // why the write probe failed; "" when writable
	StoreBackend        string
	StoreReachable      bool
	StoreError          string
	JournalBacklog      int
	JournalOldest       time.Duration
	JournalDeadLetters  int // journal entries Firestore refused for good

	// History queue (pkg/histq): notifications waiting, given up (each
	// named in HistoryLosses), edits/revokes parked for their message,
	// and history messages not recorded, by reason.
	HistoryQueued, HistoryLost, HistoryParked, HistoryParkedDropped int
	HistoryLosses                                                   []histq.Loss
	HistorySkipped                                                  map[string]int64

	// Replica: accounts whose session copy in Firestore was refused or
	// cannot be written (replica_status.go).
	Replica []ReplicaProblem

	Accounts []AccountStatus
	Totals   Counters // summed over accounts, persisted totals
	Boot     Counters // since this process started
}

// Counters are the dedupe and history counters of one account or in total,
// as the store persists them.
type Counters = store.Counters

// AccountStatus is one account as the daemon sees it.
type AccountStatus struct {
	ID             string
	Name           string
	Phone          string // E.164; masked when rendered
	State          string // daemon state: connecting, qr_ready, connected, reconnecting, needs_qr, logged_out, replaced, banned, client_outdated, stopped, passive
	BannedUntil    time.Time
	LastEventAt    time.Time
	LastMessageAt  time.Time
	ReconnectCount int
	LastError      string
	HasDiskSession bool
	IsStale        bool
	Counters       Counters
	// A pending retry: why the account is not connected, when the daemon
	// tries again, failed attempts in a row (zero values: none pending).
	RetryReason string
	NextRetryAt time.Time
	RetryCount  int
	// History queue figures of this account (see Status).
	HistoryQueued, HistoryLost int
	HistorySkipped             map[string]int64
}

// ContractStatus maps a daemon state to the status strings of the
// accounts/{id} document and the app (legacy-contract.md).
func ContractStatus(state string) string {
	switch state {
	case "connecting", "qr_ready", "connected", "reconnecting", "needs_qr", "logged_out", "passive":
		return state
	case "replaced", "stopped", "client_outdated":
		return "disconnected"
	case "banned":
		return "disconnected"
	}
	return "disconnected"
}

// Summary counts accounts by contract status.
type Summary struct {
	Total, Connected, Connecting, Disconnected, NeedsQR int
}

func (s *Status) Summary() Summary {
	var m Summary
	for _, a := range s.Accounts {
		m.Total++
		switch ContractStatus(a.State) {
		case "connected":
			m.Connected++
		case "connecting", "qr_ready", "reconnecting":
			m.Connecting++
		case "needs_qr", "logged_out":
			m.NeedsQR++
		default:
			m.Disconnected++
		}
	}
	return m
}
