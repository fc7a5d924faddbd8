package firestore

// SetCounterWriteHook runs f between a counter write's read and its write
// (nil removes it).
func SetCounterWriteHook(f func(s *Store, account string)) { counterWriteHook = f }

// SetCounterLostAnswerHook: after a counter write that landed, f returning
// true makes it report a lost answer (nil removes it).
func SetCounterLostAnswerHook(f func(s *Store, account string) bool) { counterLostAnswerHook = f }

// SetCounterHoldWriteHook: when f returns true, a counter write is not made
// but handed to f (write makes it later, with its original precondition)
// and reports a lost answer: a write that lands after its caller gave up
// (nil removes it).
func SetCounterHoldWriteHook(f func(s *Store, account string, write func() error) bool) {
	counterHoldWriteHook = f
}
