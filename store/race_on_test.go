//go:build race

package store

// raceDetector reports whether the tests run with -race, under which the
// race runtime keeps pages of mapped files dirty longer.
const raceDetector = true
