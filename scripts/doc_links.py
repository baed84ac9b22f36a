#!/usr/bin/env python3
"""Renders docs/architecture.src.md to docs/architecture.md: each {{path|regex}} becomes a
link to the one line of `path` that `regex` matches, so that the architecture document's
file:line links follow the code. Fails, naming the token, unless each regex matches exactly
one line.

    python3 scripts/doc_links.py           # write docs/architecture.md
    python3 scripts/doc_links.py --check   # exit 1 if docs/architecture.md is not up to date
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "docs", "architecture.src.md")
TARGET = os.path.join(ROOT, "docs", "architecture.md")
HEADER = "<!-- Generated from docs/architecture.src.md by scripts/doc_links.py; edit that file. -->\n"


def render(text):
    errors, cache = [], {}

    def lines(path):
        if path not in cache:
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                cache[path] = f.read().split("\n")
        return cache[path]

    def link(m):
        path, rx = m.group(1), m.group(2)
        try:
            hits = [i + 1 for i, line in enumerate(lines(path)) if re.search(rx, line)]
        except OSError as e:
            errors.append(f"{path}: {e.strerror}")
            return m.group(0)
        if len(hits) != 1:
            errors.append(f"{path} /{rx}/ matches {len(hits)} lines {hits[:5]}, not one")
            return m.group(0)
        return f"[{path}:{hits[0]}](../{path}#L{hits[0]})"

    out = re.sub(r"\{\{([^|}]+)\|([^}]+)\}\}", link, text)
    return HEADER + out, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if docs/architecture.md is stale")
    args = ap.parse_args()
    with open(SOURCE, encoding="utf-8") as f:
        out, errors = render(f.read())
    if errors:
        print("doc_links: " + "\n doc_links: ".join(errors), file=sys.stderr)
        return 1
    if args.check:
        with open(TARGET, encoding="utf-8") as f:
            if f.read() != out:
                print("doc_links: docs/architecture.md is stale; run python3 scripts/doc_links.py", file=sys.stderr)
                return 1
        print("doc_links: docs/architecture.md is up to date")
        return 0
    with open(TARGET, "w", encoding="utf-8") as f:
        f.write(out)
    print(f"doc_links: wrote docs/architecture.md ({out.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
