package serve

// TrimDelay lets the child-process tests wait for the trim without
// repeating its delay.
const TrimDelay = trimDelay
