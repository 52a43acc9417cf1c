package config

import (
	"fmt"
	"strings"

	"github.com/agext/levenshtein"
)

// closest returns the candidate nearest to s by edit distance, or "" when
// none is near enough to be a plausible typo (at most 2 edits, or a third
// of the word for longer names).
func closest(s string, candidates []string) string {
	best, bestDist := "", -1
	limit := max(2, len(s)/3)
	for _, c := range candidates {
		d := levenshtein.Distance(strings.ToLower(s), strings.ToLower(c), nil)
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean is "; did you mean \"x\"?" when a close candidate exists, else "".
func didYouMean(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" && c != s {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// oneOf is the "; did you mean" hint when there is one, else the list of
// valid values, so every unknown-value message says what to write instead.
func oneOf(s string, candidates []string) string {
	if h := didYouMean(s, candidates); h != "" {
		return h
	}
	q := make([]string, len(candidates))
	for i, c := range candidates {
		q[i] = fmt.Sprintf("%q", c)
	}
	return "; use one of " + strings.Join(q, ", ")
}
