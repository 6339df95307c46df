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
	got := composeReport(old, "# Warren benchmarks\n\nnew matrix\n", map[section]string{metaSection: newMeta})
	want := "# Warren benchmarks\n\nnew matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("full run:\n%q\nwant:\n%q", got, want)
	}
	// The metadata scenario alone: the old matrix stays.
	got = composeReport(old, "", map[section]string{metaSection: newMeta})
	want = "# Warren benchmarks\n\nold matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("metadata alone:\n%q\nwant:\n%q", got, want)
	}
	// Without the metadata scenario: the old metadata section stays.
	got = composeReport(old, "# Warren benchmarks\n\nnew matrix\n", nil)
	want = "# Warren benchmarks\n\nnew matrix\n\n" + oldMeta + "\n" + backlog
	if got != want {
		t.Errorf("without metadata:\n%q\nwant:\n%q", got, want)
	}
	// A first metadata section goes before the backlog.
	got = composeReport("# Warren benchmarks\n\nold matrix\n\n"+backlog, "", map[section]string{metaSection: newMeta})
	want = "# Warren benchmarks\n\nold matrix\n\n" + newMeta + "\n" + backlog
	if got != want {
		t.Errorf("first metadata section:\n%q\nwant:\n%q", got, want)
	}
	if got := composeReport("# old without sections\n", "new\n", nil); got != "new\n" {
		t.Errorf("without sections the report is %q", got)
	}
	if strings.Contains(composeReport("", "", map[section]string{metaSection: newMeta}), "matrix") {
		t.Error("an empty file gained a matrix")
	}
}

func TestClusterSectionIsKeptAndReplacedInPlace(t *testing.T) {
	backlog := backlogSection.start + "\nbacklog figures\n" + backlogSection.end + "\n"
	notes := notesSection.start + "\nnotes\n" + notesSection.end + "\n"
	meta := metaSection.start + "\nmetadata\n" + metaSection.end + "\n"
	oldCluster := clusterSection.start + "\nold cluster\n" + clusterSection.end + "\n"
	newCluster := clusterSection.start + "\nnew cluster\n" + clusterSection.end + "\n"

	// A first cluster section goes after the metadata one, before the notes.
	old := "# Warren benchmarks\n\nmatrix\n\n" + meta + "\n" + notes + "\n" + backlog
	got := composeReport(old, "", map[section]string{clusterSection: newCluster})
	want := "# Warren benchmarks\n\nmatrix\n\n" + meta + "\n" + newCluster + "\n" + notes + "\n" + backlog
	if got != want {
		t.Errorf("first cluster section:\n%q\nwant:\n%q", got, want)
	}
	// The cluster scenario alone replaces its section and nothing else.
	old = want
	got = composeReport(old, "", map[section]string{clusterSection: oldCluster})
	want = "# Warren benchmarks\n\nmatrix\n\n" + meta + "\n" + oldCluster + "\n" + notes + "\n" + backlog
	if got != want {
		t.Errorf("cluster alone:\n%q\nwant:\n%q", got, want)
	}
	// A run of other scenarios keeps it.
	got = composeReport(want, "# Warren benchmarks\n\nnew matrix\n", map[section]string{metaSection: meta})
	want = "# Warren benchmarks\n\nnew matrix\n\n" + meta + "\n" + oldCluster + "\n" + notes + "\n" + backlog
	if got != want {
		t.Errorf("without the cluster scenario:\n%q\nwant:\n%q", got, want)
	}
}
