package doclinks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// TestRelativeLinksResolve checks every relative link of the repository's documentation.
func TestRelativeLinksResolve(t *testing.T) {
	root := repoRoot(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("no docs/*.md under %s", root)
	}
	files := append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md")}, docs...)
	problems, links, err := checkFiles(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if links == 0 {
		t.Error("no relative links found: the link pattern no longer matches the documentation")
	}
	t.Logf("%d relative links in %d files", links, len(files))
}

// TestCheckFindsBrokenLinks: the checker reports a missing file, a missing heading in
// another file and in the same file, and accepts what GitHub would resolve.
func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/a.md", "# A\n\n## Delivery guarantees: `run` → Kafka\n\n## Notes\n\n## Notes\n")
	write("img.png", "")
	write("README.md", strings.Join([]string{
		"# Title",
		"[ok file](docs/a.md) [ok anchor](docs/a.md#delivery-guarantees-run--kafka)",
		"[ok duplicate](docs/a.md#notes-1) ![ok image](img.png) [ok dir](docs/)",
		"[ok self](#title) [external](https://example.com/x.md#nope) [mail](mailto:a@b)",
		"`[in code](nowhere.md)`",
		"```",
		"[in a fence](nowhere.md)",
		"```",
		"[missing file](docs/b.md)",
		"[missing anchor](docs/a.md#notes-2)",
		"[missing self](#nope) [split",
		"text](docs/c.md)",
		"[ref]: docs/d.md",
	}, "\n"))
	problems, links, err := checkFiles(root, []string{filepath.Join(root, "README.md")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`README.md:9: "docs/b.md": no such file docs/b.md`,
		`README.md:10: "docs/a.md#notes-2": docs/a.md has no heading with anchor #notes-2`,
		`README.md:11: "#nope": README.md has no heading with anchor #nope`,
		`README.md:12: "docs/c.md": no such file docs/c.md`,
		`README.md:13: "docs/d.md": no such file docs/d.md`,
	}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if links != 11 {
		t.Errorf("relative links checked: %d, want 11", links)
	}
}

// TestAnchor follows GitHub's rules: lower case; markup, punctuation and symbols dropped
// (letters, digits, marks, '_' and '-' kept); each space a hyphen.
func TestAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Quick start":                                "quick-start",
		"Determinism: live equals backfill":          "determinism-live-equals-backfill",
		"Running against your Kafka: docker compose": "running-against-your-kafka-docker-compose",
		"`streamscore run` → Kafka":                  "streamscore-run--kafka",
		"Which test proves what?":                    "which-test-proves-what",
		"[Linked](other.md) **bold** and snake_case": "linked-bold-and-snake_case",
		"Drift for analysts ##":                      "drift-for-analysts",
		"Größe & Übersicht":                          "größe--übersicht",
		"p50/p99 (ms)":                               "p50p99-ms",
	} {
		if got := anchor(headingText(heading)); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// repoRoot walks up from the package directory to the folder holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

var (
	// inlineLink matches [text](target) and ![alt](target), text over several lines
	// included, with an optional title after the target.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDefinition matches a reference-style link's definition: [label]: target.
	refDefinition = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// htmlLink matches href="…" and src="…" of inline HTML.
	htmlLink = regexp.MustCompile(`(?:href|src)="([^"]+)"`)
	// scheme marks an absolute URL (https:, mailto:, …), which this test does not follow.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// htmlAnchor matches an explicit anchor: <a id="…"> or <a name="…">.
	htmlAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
)

// checkFiles checks the relative links of files (absolute paths under root) and returns
// one problem per broken link, as "path:line: "target": what is wrong", in file order.
func checkFiles(root string, files []string) (problems []string, links int, err error) {
	anchors := map[string]map[string]bool{} // by absolute path, read once
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, 0, err
		}
		text := blankCode(string(raw))
		rel := slash(root, file)
		type found struct {
			offset int
			target string
		}
		var targets []found
		for _, re := range []*regexp.Regexp{inlineLink, refDefinition, htmlLink} {
			for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
				targets = append(targets, found{m[2], text[m[2]:m[3]]})
			}
		}
		sort.SliceStable(targets, func(i, j int) bool { return targets[i].offset < targets[j].offset })
		for _, l := range targets {
			if scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			links++
			line := 1 + strings.Count(text[:l.offset], "\n")
			if p := checkLink(root, file, l.target, anchors); p != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %q: %s", rel, line, l.target, p))
			}
		}
	}
	return problems, links, nil
}

// checkLink says what is wrong with one relative target of file, or "" when it resolves.
func checkLink(root, file, target string, anchors map[string]map[string]bool) string {
	path, frag, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if _, err := os.Stat(dest); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "no such file " + slash(root, dest)
			}
			return err.Error()
		}
	}
	if frag == "" {
		return ""
	}
	if !strings.HasSuffix(dest, ".md") {
		return "an anchor in a file that is not Markdown: " + slash(root, dest)
	}
	set, ok := anchors[dest]
	if !ok {
		raw, err := os.ReadFile(dest)
		if err != nil {
			return err.Error()
		}
		set = headingAnchors(string(raw))
		anchors[dest] = set
	}
	if !set[frag] {
		return fmt.Sprintf("%s has no heading with anchor #%s", slash(root, dest), frag)
	}
	return ""
}

// slash is path relative to root, with forward slashes, for messages.
func slash(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}

var atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*)$`)

// headingAnchors returns the anchors GitHub gives the headings of a Markdown file (a
// repeated anchor gets -1, -2, … in order) and its explicit <a id/name> anchors.
func headingAnchors(markdown string) map[string]bool {
	set := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(blankFences(markdown), "\n") {
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			set[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := anchor(headingText(m[1]))
		if n := seen[a]; n > 0 {
			set[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			set[a] = true
		}
		seen[a]++
	}
	return set
}

var (
	closingHashes = regexp.MustCompile(`[ \t]+#+[ \t]*$`)
	markdownLink  = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// headingText is the text a heading renders: its closing hashes, link targets and
// emphasis and code markers removed.
func headingText(h string) string {
	h = closingHashes.ReplaceAllString(strings.TrimSpace(h), "")
	h = markdownLink.ReplaceAllString(h, "$1")
	return strings.NewReplacer("`", "", "**", "", "*", "").Replace(h)
}

// anchor is GitHub's anchor of a heading's text.
func anchor(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

var fence = regexp.MustCompile("^ {0,3}(```|~~~)")

// blankFences replaces the lines of fenced code blocks, fences included, with empty lines
// (so line numbers stay), since a '#' or a link there is code.
func blankFences(markdown string) string {
	lines := strings.Split(markdown, "\n")
	open := ""
	for i, line := range lines {
		m := fence.FindStringSubmatch(line)
		switch {
		case open == "" && m != nil:
			open = m[1]
			lines[i] = ""
		case open != "":
			if m != nil && m[1] == open {
				open = ""
			}
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// blankCode blanks fenced code blocks and the contents of code spans (a run of n
// backticks up to the next run of exactly n), keeping newlines so offsets map to lines.
func blankCode(markdown string) string {
	s := []byte(blankFences(markdown))
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		n := run(s, i)
		closeAt := -1
		for j := i + n; j < len(s); {
			if s[j] != '`' {
				j++
				continue
			}
			m := run(s, j)
			if m == n {
				closeAt = j
				break
			}
			j += m
		}
		if closeAt < 0 { // an unmatched run is literal backticks
			i += n
			continue
		}
		for k := i; k < closeAt+n; k++ {
			if s[k] != '\n' {
				s[k] = ' '
			}
		}
		i = closeAt + n
	}
	return string(s)
}

// run is the length of the run of backticks starting at s[i].
func run(s []byte, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	return n
}
