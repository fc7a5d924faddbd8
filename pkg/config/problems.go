package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key   string // the configuration key, when one is concerned
	Where string // file:line, env variable, flag
	Msg   string // what is wrong and how to fix it
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
	}
	if p.Where != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("(" + p.Where + ")")
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems collects every problem found, in the order found.
type Problems []Problem

func (ps *Problems) add(key, where, msg string) {
	*ps = append(*ps, Problem{Key: key, Where: where, Msg: msg})
}

// ProblemsError is returned by Load when the configuration is not usable.
type ProblemsError struct {
	Problems Problems
	File     string
}

func (e *ProblemsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}

// unknownKeyMsg suggests the closest known key, since most unknown keys are
// typos of real ones.
func unknownKeyMsg(key string) string {
	best, bestD := "", 1<<30
	for _, k := range keys {
		if d := editDistance(key, k.Key); d < bestD {
			best, bestD = k.Key, d
		}
	}
	msg := "unknown key"
	if bestD <= 3 {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg + "; remove it or see `wactl config show` for every key"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
