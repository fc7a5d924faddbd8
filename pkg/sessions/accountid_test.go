package sessions

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The regexp is an independent statement of the accepted forms; the fuzzer
// checks the hand-written validator against it.
var accountIDOracle = regexp.MustCompile(`^(?:[0-9a-f]{32}|account_(?:dev|development|production)_[A-Za-z0-9_-]{1,64}|account_[a-z0-9]{1,32}_[0-9a-f]{32})$`)

func TestValidAccountID(t *testing.T) {
	good := []string{
		"account_prod_0123456789abcdef0123456789abcdef",
		"account_staging2_ffffffffffffffffffffffffffffffff",
		"0123456789abcdef0123456789abcdef",
		"account_dev_abc",
		"account_development_Some-Old_ID9",
		"account_production_0123456789abcdef0123456789abcdef",
	}
	bad := []string{
		"", ".", "..", "removed", "_orphaned", "account_", "account_prod_",
		"account_prod_0123456789ABCDEF0123456789ABCDEF",  // upper-case hash
		"account_prod_0123456789abcdef0123456789abcde",   // 31 hex
		"account_prod_0123456789abcdef0123456789abcdef0", // 33 hex
		"account_Prod_0123456789abcdef0123456789abcdef",
		"account__0123456789abcdef0123456789abcdef",
		"account_dev_", "account_dev_a/b", "account_dev_..", "account_dev_a b",
		"account_prod_0123456789abcdef0123456789abcdef/..",
		"../account_prod_0123456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcdeg", "0123456789ABCDEF0123456789ABCDEF",
		"account_dev_" + strings.Repeat("a", 65),
		"account_" + strings.Repeat("a", 33) + "_0123456789abcdef0123456789abcdef",
	}
	for _, id := range good {
		if err := ValidAccountID(id); err != nil {
			t.Errorf("ValidAccountID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		err := ValidAccountID(id)
		if err == nil {
			t.Errorf("ValidAccountID(%q) = nil, want error", id)
		} else if !errors.Is(err, ErrInvalidAccountID) {
			t.Errorf("ValidAccountID(%q) error %v does not wrap ErrInvalidAccountID", id, err)
		}
	}
}

func FuzzValidAccountID(f *testing.F) {
	for _, s := range []string{
		"account_prod_0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef",
		"account_dev_x", "account_development_", "../x", "account_prod_../..", "\x00", "removed",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidAccountID(id)
		if want := accountIDOracle.MatchString(id); want != (err == nil) {
			t.Fatalf("ValidAccountID(%q) = %v, oracle says valid=%v", id, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidAccountID) {
				t.Fatalf("error does not wrap ErrInvalidAccountID: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error for %q", id)
			}
			return
		}
		// A valid id must be exactly one safe path component.
		if filepath.Base(id) != id || id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") ||
			len(id) > MaxAccountIDLen || id == removedDirName {
			t.Fatalf("valid id %q is not a safe directory name", id)
		}
	})
}

var phoneOracle = regexp.MustCompile(`^(?:|\+[0-9]{6,15})$`)

func FuzzValidPhone(f *testing.F) {
	for _, s := range []string{"", "+40712345678", "0712345678", "+", "+123456789012345", "+1234567890123456", "+٣٣٣٣٣٣٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := validPhone(p)
		if want := phoneOracle.MatchString(p); want != (err == nil) {
			t.Fatalf("validPhone(%q) = %v, oracle says valid=%v", p, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("multi-line error for %q", p)
		}
	})
}
