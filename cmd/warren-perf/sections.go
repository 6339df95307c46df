package main

import "strings"

// A section is a part of docs/BENCHMARKS.md between two HTML comments. The
// run that measures it rewrites what is between them; every other run
// keeps it as it is.
type section struct {
	start, end string
}

// The report's sections: the backlog benchmark's, and the metadata and
// cluster scenarios', which a matrix run of that scenario alone can
// rewrite without the rest of the matrix.
var (
	backlogSection = section{"<!-- backlog:start -->", "<!-- backlog:end -->"}
	metaSection    = section{"<!-- meta:start -->", "<!-- meta:end -->"}
	clusterSection = section{"<!-- cluster:start -->", "<!-- cluster:end -->"}
	// notesSection holds hand-measured comparisons (a change's before and
	// after) that no run measures; every run keeps it.
	notesSection = section{"<!-- notes:start -->", "<!-- notes:end -->"}
)

// scenarioSections are the sections of scenarios the matrix measures, in
// the order they follow its own part.
var scenarioSections = []section{metaSection, clusterSection}

// replace returns doc with the section (markers included) replaced by
// text, or with text appended when doc has none. text must start and end
// with the markers.
func (s section) replace(doc, text string) string {
	text = strings.TrimRight(text, "\n") + "\n"
	i := strings.Index(doc, s.start)
	j := strings.Index(doc, s.end)
	if i >= 0 && j > i {
		rest := strings.TrimPrefix(doc[j+len(s.end):], "\n")
		return doc[:i] + text + rest
	}
	if doc == "" {
		return text
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + text
}

// extract returns doc's section with its markers, or "".
func (s section) extract(doc string) string {
	i := strings.Index(doc, s.start)
	j := strings.Index(doc, s.end)
	if i < 0 || j < i {
		return ""
	}
	return doc[i:j+len(s.end)] + "\n"
}

// remove returns doc without the section and the blank line before it.
func (s section) remove(doc string) string {
	i := strings.Index(doc, s.start)
	j := strings.Index(doc, s.end)
	if i < 0 || j < i {
		return doc
	}
	before := strings.TrimRight(doc[:i], "\n")
	rest := strings.TrimLeft(doc[j+len(s.end):], "\n")
	switch {
	case before == "":
		return rest
	case rest == "":
		return before + "\n"
	}
	return before + "\n\n" + rest
}

// composeReport returns the report file's new text from its old text and
// what a matrix run rendered: main, the matrix's own part ("" when the run
// measured none of its scenarios), and measured, the text of each
// scenario section the run measured. What the run did not measure is kept
// from old: the matrix's part when main is "", every scenario section the
// run did not measure, and always the notes and the backlog section,
// which comes last.
func composeReport(old, main string, measured map[section]string) string {
	doc := main
	if main == "" {
		doc = old
		for _, s := range append([]section{notesSection, backlogSection}, scenarioSections...) {
			doc = s.remove(doc)
		}
	}
	for _, s := range scenarioSections {
		text := measured[s]
		if text == "" {
			text = s.extract(old)
		}
		if text != "" {
			doc = s.replace(doc, text)
		}
	}
	if notes := notesSection.extract(old); notes != "" {
		doc = notesSection.replace(doc, notes)
	}
	if backlog := backlogSection.extract(old); backlog != "" {
		doc = backlogSection.replace(doc, backlog)
	}
	return doc
}
