"""The README and docs/*.md as a reader meets them: short enough, every local link resolves, no issue numbers,
and every docs page says first what it is for. Text only: fast, no network, no lab4 import."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_WORDS = 1500

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); an optional "title" after the target
LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+|<[a-z]+:[^>]*>", re.IGNORECASE)
# an issue or pull request named by number: "issue #13", "(issue 23)", "issues 21", "PR #5", "pull request 7"
ISSUE_WORD = re.compile(r"\b(?:issues?|pull requests?|PRs?)\s*#?\d+", re.IGNORECASE)
# "(#14)", "#17", "#22;": a hash right before a number, not glued to a word. So not a hex colour (#1f77b4: no
# word boundary after the digits), an HTML entity (&#39;), or upstream's own tracker cited as owner/repo#N
# ("jupyter/nbclient#312": the hash follows a name).
HASH_NUMBER = re.compile(r"(?<![\w/&])#\d+\b")
# words that number things of their own, not issues: "frame #3", "seed #2"
COUNTED = set(
    "frame frames seed seeds epoch epochs step steps iteration run runs sequence cell row column item "
    "number rank line page".split()
)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text outside fenced code blocks (``` or ~~~, indented or not); fences and code become empty lines,
    so line numbers stay the file's."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def readme_words(text: str) -> int:
    """README words as a reader counts them. The rule: drop fenced code blocks; write each markdown link or
    image as its text only (`[text](url)` -> `text`, `![alt](path)` -> `alt`, so URLs and paths in
    parentheses do not count); then count the whitespace-separated tokens that hold at least one letter or
    digit (table rules `|---|`, bullets and lone punctuation are not words). Inline code counts as words."""
    body = LINK.sub(lambda m: m.group(2), prose(text))
    return sum(1 for tok in body.split() if re.search(r"\w", tok))


def links(text: str) -> list[str]:
    """Targets of markdown links and images outside fenced code blocks."""
    return [m.group(3) for m in LINK.finditer(prose(text))]


def issue_references(text: str) -> list[str]:
    """Issue and pull-request numbers outside fenced code and URLs (link targets included), as
    'line N: excerpt'."""
    found = []
    body = LINK.sub(lambda m: m.group(1) + "[" + m.group(2) + "]()", prose(text))
    for n, line in enumerate(body.splitlines(), 1):
        line = URL.sub(" ", line)
        hits = [m.group(0) for m in ISSUE_WORD.finditer(line)]
        for m in HASH_NUMBER.finditer(line):
            before = line[: m.start()].split()
            if before and before[-1].lower().strip("(*_`") in COUNTED:
                continue
            hits.append(m.group(0))
        found += [f"line {n}: {h!r} in {line.strip()[:100]!r}" for h in hits]
    return found


def test_readme_is_at_most_1500_words_outside_code():
    """README.md holds at most 1,500 words of prose. Counted as `readme_words` says: fenced code blocks left
    out, links and images counted by their text only (not their URL or path), and only tokens with a letter
    or digit. The details belong in docs/."""
    n = readme_words(README.read_text(encoding="utf-8"))
    assert n <= README_MAX_WORDS, f"README.md has {n} words outside code blocks; at most {README_MAX_WORDS}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_exists(page):
    """Every relative path a page names in `[text](path)` or `![alt](path)` exists, resolved against the
    page's own folder. http(s)/mailto links and pure `#anchors` are skipped; a path's `#anchor` is dropped."""
    missing = []
    for target in links(page.read_text(encoding="utf-8")):
        if not target or target.startswith("#") or re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        where = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        if not where.exists():
            missing.append(target)
    assert not missing, f"{rel(page)} links to paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_no_issue_references(page):
    """No page cites this project's issues or pull requests by number ("issue #13", "(issue 23)", "(#14)",
    "#17"): a reader has no tracker to look them up in. Fenced code and URLs are not checked; upstream
    citations as owner/repo#N (jupyter/nbclient#312) and counted things ("frame #3") are allowed."""
    refs = issue_references(page.read_text(encoding="utf-8"))
    assert not refs, f"{rel(page)} cites issues by number:\n" + "\n".join(refs)


def test_the_issue_check_flags_issues_and_nothing_else():
    """The check itself, on the forms it must catch and the ones it must let through."""
    flagged = [
        "Issue #13 asked which",
        "## Title (issue #23)",
        "(issue 23)",
        "the seeds issue (#14) brings",
        "#17 is blocked",
        "blocked (#17 is",
        "issue 21",
        "see PR #5",
        "(#22);",
    ]
    allowed = [
        "frame #3 of the rollout",
        "seed #2",
        "jupyter/nbclient#312",
        "(jupyter/nbclient#312)",
        "[nbclient](https://github.com/jupyter/nbclient/issues/312)",
        "https://example.org/issues/7",
        "colour #1f77b4",
        "## 2. A numbered heading",
        "```\n# 23 runs\nissue #9\n```",
        "C# 12",
        "x&#39;s",
    ]
    for text in flagged:
        assert issue_references(text), text
    for text in allowed:
        assert not issue_references(text), text


def test_links_are_found_outside_code_only():
    text = (
        'See [a](docs/a.md) and ![b](figures/b.png "t"), [c](https://x.org) [d](#top).\n```\n[e](f.md)\n```'
    )
    assert links(text) == ["docs/a.md", "figures/b.png", "https://x.org", "#top"]


def test_readme_word_rule():
    """Code blocks, URLs and punctuation-only tokens do not count; link text and inline code do."""
    text = (
        "One `two` [three four](https://x.org/a/b/c) ![five](figures/a.png)\n\n"
        "| six |\n|---|\n```\nnot counted\n```\n- seven"
    )
    assert readme_words(text) == 7


@pytest.mark.parametrize("page", DOCS, ids=rel)
def test_docs_page_opens_with_a_line_of_prose(page):
    """After an optional `# heading` line and blank lines, a docs page's first line is prose saying what the
    page is for: not a heading, list, table, quote, code fence, image or HTML, and at least five words."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    if lines and re.match(r"#\s", lines[0]):
        i = 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = lines[i] if i < len(lines) else ""
    block = re.match(r"\s*(#|\||[-*+]\s|>|```|~~~|<|!\[|\d+[.)]\s)", first)
    assert first and not block and len(first.split()) >= 5, (
        f"{rel(page)} should open with a line of prose saying what it is for, not {first!r}"
    )
