package sessions

import (
	"fmt"
	"testing"
)

// BenchmarkInventory compares the deep survey (quick_check of every page)
// with List (metadata and device row only) on 20 paired accounts; List is
// the baseline.
func BenchmarkInventory(b *testing.B) {
	s, _ := newStore(b)
	for i := 0; i < 20; i++ {
		makePaired(b, s, fmt.Sprintf("account_prod_%032x", i), fmt.Sprintf("4071%07d", i))
	}
	ctx := contextBackground()
	b.Run("List", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.List(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Inventory", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Inventory(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
