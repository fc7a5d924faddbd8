package daemon

// SetBeforeConnect installs a hook that runs right before a client connects
// (after the lease check, when there is one), so tests can force an
// ordering between a connect and a step-down. It returns the restore func.
func SetBeforeConnect(f func(account, why string)) (restore func()) {
	prev := beforeConnect.Swap(&f)
	return func() { beforeConnect.Store(prev) }
}
