package main

import (
	"strings"
	"testing"
)

func TestReplaceSectionKeepsTheRestOfTheDocument(t *testing.T) {
	s := backlogSection
	text := s.start + "\nnew figures\n" + s.end + "\n"
	old := "# Warren benchmarks\n\ntable\n\n" + s.start + "\nold figures\n" + s.end + "\n\nafter\n"
	got := s.replace(old, text)
	want := "# Warren benchmarks\n\ntable\n\n" + text + "\nafter\n"
	if got != want {
		t.Errorf("replaced:\n%q\nwant:\n%q", got, want)
	}
	if got := s.replace("# Warren benchmarks\n\ntable\n", text); got != "# Warren benchmarks\n\ntable\n\n"+text {
		t.Errorf("appended:\n%q", got)
	}
	if got := s.replace("", text); got != text {
		t.Errorf("into an empty file:\n%q", got)
	}
}

func TestRemoveSectionJoinsWhatWasAroundIt(t *testing.T) {
	s := metaSection
	text := s.start + "\nfigures\n" + s.end + "\n"
	for _, tc := range []struct{ doc, want string }{
		{"head\n\n" + text + "\ntail\n", "head\n\ntail\n"},
		{"head\n\n" + text, "head\n"},
		{text + "\ntail\n", "tail\n"},
		{"no section\n", "no section\n"},
	} {
		if got := s.remove(tc.doc); got != tc.want {
			t.Errorf("remove from %q = %q, want %q", tc.doc, got, tc.want)
		}
	}
}

func TestMatrixReportKeepsTheSectionsItDidNotMeasure(t *testing.T) {
	backlog := backlogSection.start + "\nbacklog figures\n" + backlogSection.end + "\n"
	oldMeta := metaSection.start + "\nold metadata\n" + metaSection.end + "\n"
	newMeta := metaSection.start + "\nnew metadata\n" + metaSection.end + "\n"
	old := "# Warren benchmarks\n\nold matrix\n\n" + oldMeta + "\n" + backlog

	// A full run: its own part and metadata section, the old backlog.
	got := composeReport(old, "# Warren benchmarks\n\nnew matrix\n", newMeta)
	want := "# Warren benchmarks\n\nnew matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("full run:\n%q\nwant:\n%q", got, want)
	}
	// The metadata scenario alone: the old matrix stays.
	got = composeReport(old, "", newMeta)
	want = "# Warren benchmarks\n\nold matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("metadata alone:\n%q\nwant:\n%q", got, want)
	}
	// Without the metadata scenario: the old metadata section stays.
	got = composeReport(old, "# Warren benchmarks\n\nnew matrix\n", "")
	want = "# Warren benchmarks\n\nnew matrix\n\n" + oldMeta + "\n" + backlog
	if got != want {
		t.Errorf("without metadata:\n%q\nwant:\n%q", got, want)
	}
	// A first metadata section goes before the backlog.
	got = composeReport("# Warren benchmarks\n\nold matrix\n\n"+backlog, "", newMeta)
	want = "# Warren benchmarks\n\nold matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("first metadata section:\n%q\nwant:\n%q", got, want)
	}
	if got := composeReport("# old without sections\n", "new\n", ""); got != "new\n" {
		t.Errorf("without sections the report is %q", got)
	}
	if strings.Contains(composeReport("", "", newMeta), "matrix") {
		t.Error("an empty file gained a matrix")
	}
}
