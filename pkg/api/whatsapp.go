package api

import (
	"context"

	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/pkg/daemon"
)

// WhatsApp is what the API needs from the running daemon (pkg/daemon's
// Manager implements it; the lead owns that side). Account state, QR codes
// and sending all go through it, so the API never holds a whatsmeow client.
type WhatsApp interface {
	// Active reports whether this instance holds the lease; mutations on a
	// PASSIVE instance answer 503 instance_passive.
	Active() bool
	// Accounts is every known account with its live state (cheap: memory).
	Accounts() []daemon.AccountStatus
	// Pairing returns the current QR code (raw string, as the phone scans
	// it) or pairing code of an account that is pairing, with when it was
	// issued; ok is false when the account is not pairing.
	Pairing(accountID string) (p PairingState, ok bool)
	// AddAccount creates the account (sessions + store) and starts pairing
	// it in the background; the QR then shows in Pairing. With phoneCode a
	// pairing code is requested for phone instead.
	AddAccount(ctx context.Context, req AddAccount) error
	// RegenerateQR restarts pairing of an account that is not connected.
	// It returns ErrPairingInProgress while a pairing started less than a
	// moment ago is still starting (the route answers 202).
	RegenerateQR(ctx context.Context, accountID string) error
	// Disconnect stops an account's connection (state stopped) without
	// touching its session.
	Disconnect(ctx context.Context, accountID string) error
	// Reset logs the account out and drops its session: it needs a new QR.
	Reset(ctx context.Context, accountID string) error
	// Rename changes the display name.
	Rename(ctx context.Context, accountID, name string) error
	// Delete soft-deletes: disconnects, keeps the session on disk under
	// removed/, marks the account deleted.
	Delete(ctx context.Context, accountID string) error
	// SendText sends one text message with the given WhatsApp message id
	// (derived from the request id, so a resend reuses it). It fails with
	// ErrNotConnected when the account is not connected.
	SendText(ctx context.Context, accountID string, to types.JID, body, waMessageID string) (SentInfo, error)
}

// The request and answer types are defined by pkg/daemon, which implements
// WhatsApp (it cannot import this package).
type (
	AddAccount   = daemon.AddAccountRequest
	PairingState = daemon.PairingState
	SentInfo     = daemon.SentInfo
)

var (
	ErrNotConnected      = daemon.ErrNotConnected
	ErrNoAccount         = daemon.ErrNoAccount
	ErrPairingInProgress = daemon.ErrPairingInProgress
	ErrPassive           = daemon.ErrPassive
)
