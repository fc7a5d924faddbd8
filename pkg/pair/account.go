package pair

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/sessions"
)

// AccountOptions configures PairAccount.
type AccountOptions struct {
	Options
	// Force re-pairs an account that is already paired: the old link is
	// logged out (Unlink) first. The caller asks the operator to confirm.
	Force bool
	// NewClient builds the whatsmeow client for a device (logger, HTTP
	// client, version override). Required.
	NewClient func(*store.Device) *whatsmeow.Client
}

// PairAccount pairs a sessions account: it opens the account's device store
// (holding the account lock, so a running daemon's account is refused with
// *sessions.InUseError), refuses an already paired account unless Force,
// runs Pair with the account's phone as the expected phone (unless
// opts.ExpectedPhone is set), and records the new JID in account.json.
// The device store is closed on return; on any outcome but paired nothing
// new is kept in it.
func PairAccount(ctx context.Context, st *sessions.Store, id string, opts AccountOptions) (Result, error) {
	if opts.NewClient == nil {
		return Result{Outcome: OutcomeError}, errors.New("pair: AccountOptions.NewClient is required")
	}
	dev, err := st.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		var inUse *sessions.InUseError
		if errors.As(err, &inUse) {
			err = fmt.Errorf("%w; if that is the wactl daemon, pair through the daemon instead of wactl pair", err)
		}
		return Result{Outcome: OutcomeError}, err
	}
	defer dev.Close()
	if opts.ExpectedPhone == "" {
		opts.ExpectedPhone = dev.Account.Phone
	}
	client := opts.NewClient(dev.Store)
	holdHistory(client) // history.go: the daemon records it
	defer wasock.Close(client)
	if dev.Paired() && opts.Force {
		if err := Unlink(ctx, client); err != nil {
			return Result{Outcome: OutcomeError}, fmt.Errorf("unlink the current device before re-pairing: %w", err)
		}
		if _, err := st.MarkUnpaired(id); err != nil && !errors.Is(err, sessions.ErrNoMetadata) {
			return Result{Outcome: OutcomeError}, err
		}
		dev.Store = dev.Container.NewDevice()
		client = opts.NewClient(dev.Store)
		holdHistory(client)
		defer wasock.Close(client)
	}
	res, err := Pair(ctx, client, opts.Options)
	if err != nil {
		return res, err
	}
	if _, err := st.MarkPaired(id, res.JID.String()); err != nil {
		if errors.Is(err, sessions.ErrNoMetadata) {
			return res, nil // the session works; inventory reports the missing metadata
		}
		return res, fmt.Errorf("paired as %s, but recording it in account.json failed: %w", res.Phone, err)
	}
	return res, nil
}
