package doctor

import (
	"context"
	"fmt"
)

// AppliedFix is a fix --fix ran, with its outcome.
type AppliedFix struct {
	Check string
	Fix   Fix
	Err   error
}

// AutoFixes lists the safe fixes of failed or warned checks, in order.
func (r *Report) AutoFixes() []AppliedFix {
	var out []AppliedFix
	for _, c := range r.Checks {
		if c.Status != Fail && c.Status != Warn {
			continue
		}
		for _, f := range c.Fixes {
			if f.Auto && f.apply != nil {
				out = append(out, AppliedFix{Check: c.Name, Fix: f})
			}
		}
	}
	return out
}

// Apply runs the fixes; one failing does not stop the others. Fixes only
// create, chown, chmod and write a drop-in; none deletes anything.
func Apply(ctx context.Context, fixes []AppliedFix) []AppliedFix {
	for i := range fixes {
		if err := fixes[i].Fix.apply(ctx); err != nil {
			fixes[i].Err = fmt.Errorf("%s: %w", fixes[i].Fix.Summary, err)
		}
	}
	return fixes
}
