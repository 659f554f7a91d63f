// Package doclinks holds a test, and nothing else: every relative link in README.md,
// CONTRIBUTING.md and docs/*.md must name a file that exists and, for file.md#anchor, a
// heading of that file. The documentation is split into one file per topic and linked
// across; a section renamed or moved breaks links that no reader would report.
package doclinks
