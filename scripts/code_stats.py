#!/usr/bin/env python3
"""Measures the Rust source tree at two points and prints before/after Markdown tables.

    python3 scripts/code_stats.py BEFORE AFTER      # AFTER may be WORKTREE (files on disk)
    python3 scripts/code_stats.py a2d1a61 WORKTREE --core engine,event,money,period

Nothing is checked out: a commit's files are listed with `git ls-tree -r COMMIT` and read with
`git show COMMIT:path`. WORKTREE means the files on disk now, committed or not (what
`git ls-files --cached --others --exclude-standard` lists and is still present).

The source measured: every `*.rs` under `src/` and under `crates/*/src/` (tests/, benches/
and examples/ are not library or binary source and are left out). Each of `src/` and
`crates/<dir>/src/` is one package; its `lib.rs` is a library crate root and `main.rs` (and
`bin/*.rs`) a binary crate root. Files are shown by their real path; a file found at
`src/X` on one side and at `crates/<dir>/src/X` on the other is shown as one row
`old → new`.

What it measures, and how (every figure is read from the text, nothing is compiled):

1. Lines per file: the number of lines, as `wc -l` counts them (plus an unterminated last
   line, if any). The totals row also gives the lines inside `#[cfg(test)]` modules.
2. The ten longest functions: every `fn NAME` with a body, from the line of the `fn` keyword
   to the line of the closing brace, inclusive (attributes and doc comments above it are not
   counted). Braces are matched after blanking comments (`//`, nested `/* */`), string
   literals (plain, byte, C, raw `r#"..."#`) and char literals; lifetimes and loop labels
   (`'a`) are told from char literals. Test code is left out (functions inside a
   `#[cfg(test)]` module or file, and `#[test]` functions) unless --with-tests is given.
   A nested `fn` is measured on its own and also counts in its outer function's lines.
3. Public items: each `pub` keyword that starts an item (fn, struct, enum, trait, type,
   const, static, mod, use, union), not `pub(crate)`, `pub(super)`, `pub(in ...)`. A
   `pub use` counts one per name it re-exports (`pub use a::{b, c}` is 2, a glob is 1).
   `pub fn`/`pub const` inside an `impl` block are counted as "fn (in impl)"/"const (in
   impl)". An item is "reachable" if every module from the crate root down to it is declared
   `pub mod` (inline `mod x { }` modules included; `#[cfg(test)] mod tests` is private), so
   its path can be named from outside the crate; the check is lexical only: a `pub` method
   of a type that is itself private, or a `pub` item re-exported from a private module, is
   counted where it is written. `pub` fields (named `pub x: T` and tuple `(pub T)`) are
   counted apart from the items. Binary crates (main.rs) are counted separately.
4. Import cycles between top-level modules: a top-level module is the first path component
   under the package's `src/` (src/engine/trade.rs -> `engine`, src/event/scan.rs ->
   `event`, src/kafka.rs -> `kafka`). A -> B when code in A (comments excluded, `use` lines
   and paths in code alike) names `crate::B...` (grouped `use crate::{b, c::d}` gives one
   edge per group member), a `super::` path that climbs to the crate root and then names
   B, or `<other_crate>::B` for another package of this tree (e.g. `silkroute_core::engine`
   or, from main.rs, `silkroute::config`). `crate::X` where X is a name the crate root
   imports (`pub use kafka::consumer_config;` in lib.rs) is an edge to the module it comes
   from (`kafka`). A binary crate (main.rs and its modules) is one node, `main`; lib.rs
   itself adds no edge. Cycles are the strongly connected components of more than one module;
   they are given for all code and again with `#[cfg(test)]`/`#[test]` code left out.
   Then: the edges from the core modules (--core) to any other module.

Limits: `#[path = ...]` attributes and macro-generated items are not followed; `cfg` other
than a bare `#[cfg(test)]` is ignored; a `{` inside a generic const argument in a function
signature would be taken for the body.
"""

import argparse
import bisect
import collections
import os
import re
import subprocess
import sys
import tomllib

WORKTREE = "WORKTREE"
SOURCE_RE = re.compile(r"^(?:crates/[^/]+/)?src/.+\.rs$")
IDENT = r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*"
DEFAULT_CORE = "engine,event,money,period"


# ----------------------------------------------------------------------------------------
# Reading a tree without checking it out


def git(repo, *args, check=True):
    """Runs git in `repo` and returns its stdout as text."""
    result = subprocess.run(
        ["git", "-C", repo, *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        sys.exit(f"code_stats: git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Tree:
    """The files of one side: a commit (read through git) or the work tree (read from disk)."""

    def __init__(self, repo, rev):
        self.repo = repo
        self.rev = rev
        if rev == WORKTREE:
            listed = git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
            self.paths = sorted(
                p for p in listed.split("\0") if p and os.path.isfile(os.path.join(repo, p))
            )
            head = git(repo, "rev-parse", "--short", "HEAD").strip()
            dirty = git(repo, "status", "--porcelain", "--", "src", "crates").strip()
            self.label = f"WORKTREE (HEAD {head}" + (", with uncommitted changes)" if dirty else ")")
        else:
            self.commit = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
            self.paths = sorted(
                p for p in git(repo, "ls-tree", "-r", "--name-only", "-z", self.commit).split("\0") if p
            )
            short = git(repo, "rev-parse", "--short", self.commit).strip()
            subject = git(repo, "log", "-1", "--format=%s", self.commit).strip()
            if len(subject) > 70:
                subject = subject[:67] + "..."
            self.label = f"{short} ({subject})"
        self._cache = {}

    def read(self, path):
        """Returns the text of `path` on this side, or None if it has no such file."""
        if path not in self._cache:
            if self.rev == WORKTREE:
                full = os.path.join(self.repo, path)
                text = None
                if os.path.isfile(full):
                    with open(full, encoding="utf-8", errors="replace") as f:
                        text = f.read()
            else:
                result = subprocess.run(
                    ["git", "-C", self.repo, "show", f"{self.commit}:{path}"],
                    capture_output=True,
                    check=False,
                )
                text = result.stdout.decode("utf-8", "replace") if result.returncode == 0 else None
            self._cache[path] = text
        return self._cache[path]

    def sources(self):
        """The measured source files: `*.rs` under src/ and crates/*/src/."""
        return [p for p in self.paths if SOURCE_RE.match(p)]


# ----------------------------------------------------------------------------------------
# Lexing: blank comments and literals so that braces and keywords can be searched safely


def _string_end(src, i):
    """Index just past the string literal whose opening quote is at `i` (escapes honoured)."""
    n = len(src)
    k = i + 1
    while k < n:
        ch = src[k]
        if ch == "\\":
            k += 2
        elif ch == '"':
            return k + 1
        else:
            k += 1
    return n


def mask(src):
    """Returns `src` with the inside of comments, strings and char literals turned to spaces.

    The result has the same length and the same newlines, so offsets and line numbers still
    hold. Comments are blanked whole; literals keep their delimiters. Handled: `//` and nested
    `/* */` comments; "..." with escapes; b"..", c".."; raw strings r".." r#".."# br#".."#
    cr#".."#; char and byte literals ('x', '\\n', '\\'', '\\u{..}', b'x'); lifetimes and
    labels ('a, 'static, '_) are left alone; raw identifiers (r#type) are not strings.
    """
    out = list(src)
    n = len(src)

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    def char_literal_end(i):
        """End of a char literal opening at `i`, or None if `i` starts a lifetime/label."""
        if i + 1 < n and src[i + 1] == "\\":
            end = src.find("'", i + 3)
            return n if end < 0 else end + 1
        if i + 2 < n and src[i + 2] == "'" and src[i + 1] != "\n":
            return i + 3
        return None

    i = 0
    while i < n:
        c = src[i]
        if c == "/" and src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in ("r", "br", "cr") and j < n and src[j] in '"#':
                k = j
                while k < n and src[k] == "#":
                    k += 1
                if k < n and src[k] == '"':  # a raw string, not a raw identifier
                    close = '"' + "#" * (k - j)
                    end = src.find(close, k + 1)
                    end = n if end < 0 else end + len(close)
                    blank(k + 1, end - len(close))
                    i = end
                    continue
            elif word in ("b", "c") and j < n and src[j] == '"':
                end = _string_end(src, j)
                blank(j + 1, end - 1)
                i = end
                continue
            elif word == "b" and j < n and src[j] == "'":
                end = char_literal_end(j)
                if end is not None:
                    blank(j + 1, end - 1)
                    i = end
                    continue
            i = j
        elif c.isdigit():
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            i = j
        elif c == '"':
            end = _string_end(src, i)
            blank(i + 1, end - 1)
            i = end
        elif c == "'":
            end = char_literal_end(i)
            if end is None:
                i += 1  # a lifetime or a label
            else:
                blank(i + 1, end - 1)
                i = end
        else:
            i += 1
    return "".join(out)


def match_braces(masked):
    """Maps the offset of each `{` to the offset of its `}` (in text already masked)."""
    pairs, stack = {}, []
    for m in re.finditer(r"[{}]", masked):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


def header_end(masked, start):
    """Offset of the first `{` or `;` after `start` outside () and [] (an item's header end)."""
    depth = 0
    for k in range(start, len(masked)):
        ch = masked[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth <= 0 and ch in "{;":
            return k
    return len(masked)


def attributes_before(masked, start):
    """The text between the previous `;`, `{` or `}` and `start`: an item's attributes."""
    k = max(masked.rfind(";", 0, start), masked.rfind("{", 0, start), masked.rfind("}", 0, start))
    return masked[k + 1 : start]


def prev_char(masked, offset):
    """The last character before `offset` that is not whitespace ("" at the start)."""
    k = offset - 1
    while k >= 0 and masked[k].isspace():
        k -= 1
    return masked[k] if k >= 0 else ""


def preceded_by_pub(masked, offset):
    """Whether the keyword at `offset` is preceded by a bare `pub` (not `pub(crate)`)."""
    k = offset - 1
    while k >= 0 and masked[k].isspace():
        k -= 1
    return masked[max(0, k - 2) : k + 1] == "pub" and (k < 3 or not (masked[k - 3].isalnum() or masked[k - 3] == "_"))


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
TEST_ATTR = re.compile(r"#\s*\[\s*(?:[A-Za-z_]\w*\s*::\s*)*test\s*(?:\(|\])")


# ----------------------------------------------------------------------------------------
# One source file


class Block:
    """An `impl`, `trait` or inline `mod` block: its kind, name, brace span and flags."""

    def __init__(self, kind, name, open_at, close_at, public=False, test=False):
        self.kind, self.name = kind, name
        self.open_at, self.close_at = open_at, close_at
        self.public, self.test = public, test

    def contains(self, offset):
        return self.open_at < offset < self.close_at


def impl_type_name(header):
    """The self type's name from an impl header such as `<T> Trait<X> for Foo<T> where ...`."""
    text = header.strip()
    if text.startswith("<"):  # the impl's own generics
        depth, k = 0, 0
        while k < len(text):
            if text.startswith("->", k):
                k += 2
                continue
            if text[k] == "<":
                depth += 1
            elif text[k] == ">":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        text = text[k + 1 :]
    text = re.split(r"\bwhere\b", text)[0]
    depth, cut = 0, None
    for m in re.finditer(r"<|>|\bfor\b", text):
        if m.group() == "<":
            depth += 1
        elif m.group() == ">":
            depth -= 1
        elif depth == 0:
            cut = m.end()
    if cut is not None:
        text = text[cut:]
    text = re.sub(r"<.*", "", text, flags=re.S)
    names = re.findall(r"[A-Za-z_]\w*", text)
    names = [w for w in names if w not in ("dyn", "mut", "const", "unsafe")]
    return names[-1] if names else "?"


class SourceFile:
    """One .rs file: its text, masked text, blocks, functions and `pub` items."""

    def __init__(self, path, text):
        self.path = path
        self.text = text
        self.masked = mask(text)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.lines = len(text.splitlines())
        self.pairs = match_braces(self.masked)
        self.file_is_test = False  # set when its `mod` declaration is #[cfg(test)]
        self.blocks = self._blocks()

    def line_of(self, offset):
        """1-based line number of an offset."""
        return bisect.bisect_right(self.line_starts, offset)

    def _blocks(self):
        """Finds impl, trait and inline mod blocks."""
        blocks, m_ = [], self.masked
        for m in re.finditer(r"\b(impl|trait|mod)\b", m_):
            kind = m.group(1)
            if kind == "impl":
                prev = prev_char(m_, m.start())
                word = re.search(r"(\w+)\s*$", m_[max(0, m.start() - 20) : m.start()])
                if not (prev in ("", "{", "}", ";", "]") or (word and word.group(1) in ("unsafe", "default"))):
                    continue  # `impl Trait` in a type position
            end = header_end(m_, m.end())
            if end >= len(m_) or m_[end] != "{" or end not in self.pairs:
                continue
            head = m_[m.end() : end]
            attrs = attributes_before(m_, m.start())
            if kind == "impl":
                name = impl_type_name(head)
            else:
                found = re.match(r"\s*(" + IDENT + ")", head)
                name = found.group(1) if found else "?"
            public = preceded_by_pub(m_, m.start())
            blocks.append(
                Block(kind, name, end, self.pairs[end], public=public, test=bool(CFG_TEST.search(attrs)))
            )
        return blocks

    def enclosing(self, offset, kind=None):
        """The blocks containing `offset`, outermost first (optionally of one kind)."""
        found = [b for b in self.blocks if b.contains(offset) and (kind is None or b.kind == kind)]
        return sorted(found, key=lambda b: b.open_at)

    def in_test(self, offset):
        """Whether `offset` lies in test code: a #[cfg(test)] file or module, a #[test] fn."""
        if self.file_is_test or any(b.test for b in self.enclosing(offset, "mod")):
            return True
        return any(a <= offset <= b for a, b in self._test_fn_bodies)

    @property
    def _test_fn_bodies(self):
        """(fn keyword, closing brace) of `#[test]` (or `#[tokio::test]`, ...) functions."""
        if not hasattr(self, "_test_fns"):
            self._test_fns = []
            for m in re.finditer(r"\bfn\s+" + IDENT, self.masked):
                if TEST_ATTR.search(attributes_before(self.masked, m.start())):
                    end = header_end(self.masked, m.end())
                    if end in self.pairs:
                        self._test_fns.append((m.start(), self.pairs[end]))
        return self._test_fns

    def test_lines(self):
        """Lines inside #[cfg(test)] modules (the whole file if the file is one)."""
        if self.file_is_test:
            return self.lines
        spans = [b for b in self.blocks if b.kind == "mod" and b.test]
        outer = [b for b in spans if not any(o is not b and o.contains(b.open_at) for o in spans)]
        return sum(self.line_of(b.close_at) - self.line_of(b.open_at) + 1 for b in outer)

    def functions(self):
        """Yields (name, start_line, lines, is_test) for every fn with a body."""
        for m in re.finditer(r"\bfn\s+(" + IDENT + r")", self.masked):
            end = header_end(self.masked, m.end())
            if end >= len(self.masked) or self.masked[end] != "{" or end not in self.pairs:
                continue  # a declaration without a body
            first = self.line_of(m.start())
            last = self.line_of(self.pairs[end])
            owners = [b for b in self.enclosing(m.start()) if b.kind in ("impl", "trait")]
            name = m.group(1)
            if owners:
                name = f"{owners[-1].name}::{name}"
            is_test = self.in_test(m.start())
            yield name, first, last - first + 1, is_test


# ----------------------------------------------------------------------------------------
# Packages, crates and their module trees


def expand_use(tree, prefix=()):
    """Expands a use tree (`a::{b, c::d as e}`) into (path tuple, bound name) pairs."""
    tree = tree.strip()
    if not tree:
        return []
    brace = tree.find("{")
    if brace < 0:
        alias = None
        found = re.match(r"(.*?)\s+as\s+(" + IDENT + r")\s*$", tree, re.S)
        if found:
            tree, alias = found.group(1), found.group(2)
        parts = tuple(p.strip() for p in tree.split("::") if p.strip())
        path = prefix + parts
        if parts == ("self",):
            path = prefix
        name = alias or (path[-1] if path else None)
        return [(path, name)]
    head = tuple(p.strip() for p in tree[:brace].split("::") if p.strip())
    depth, close = 0, len(tree)
    for k in range(brace, len(tree)):
        if tree[k] == "{":
            depth += 1
        elif tree[k] == "}":
            depth -= 1
            if depth == 0:
                close = k
                break
    inner, parts, depth, last = tree[brace + 1 : close], [], 0, 0
    for k, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[last:k])
            last = k + 1
    parts.append(inner[last:])
    result = []
    for part in parts:
        result += expand_use(part, prefix + head)
    return result


class Crate:
    """A crate of the tree: its root file, its modules and where each file sits in them."""

    def __init__(self, package, root, kind):
        self.package = package  # the Package it belongs to
        self.root = root  # path of lib.rs / main.rs / bin/x.rs
        self.kind = kind  # "lib" or "bin"
        self.files = {}  # path -> (module path tuple, reachable from the root)
        self.top_modules = {}  # module declared in the root -> declared `pub mod`
        self.root_imports = {}  # name bound by a `use` in the root -> its path tuple
        self.root_globs = []  # path tuples of `use path::*;` in the root
        if kind == "lib":
            self.name = package.crate_name
        elif root.endswith("/main.rs"):
            self.name = package.crate_name
        else:
            self.name = os.path.splitext(os.path.basename(root))[0]

    @property
    def label(self):
        """How the crate is named in the tables."""
        return f"{self.kind} `{self.name}`"

    @property
    def node(self):
        """A binary crate's single node in the module graph."""
        return "main" if self.root.endswith("/main.rs") else f"bin/{self.name}"


class Package:
    """`src/` or `crates/<dir>/src/`: its crate name and its crates (lib and bins)."""

    def __init__(self, tree, base, files):
        self.tree = tree
        self.base = base  # "" or "crates/<dir>/"
        self.src = base + "src/"
        self.crate_name = self._crate_name()
        self.crates = []
        roots = [(self.src + "lib.rs", "lib"), (self.src + "main.rs", "bin")]
        roots += [(p, "bin") for p in files if re.fullmatch(re.escape(self.src) + r"bin/[^/]+\.rs", p)]
        for root, kind in roots:
            if root in files:
                crate = Crate(self, root, kind)
                self.crates.append(crate)
                _walk_modules(crate, root, (), True, False, set(files))

    @property
    def lib(self):
        """The package's library crate, or None."""
        return next((c for c in self.crates if c.kind == "lib"), None)

    def _crate_name(self):
        """The library's name from Cargo.toml ([lib] name, else [package] name), `-` as `_`."""
        text = self.tree.read(self.base + "Cargo.toml")
        name = None
        if text:
            try:
                data = tomllib.loads(text)
                name = data.get("lib", {}).get("name") or data.get("package", {}).get("name")
            except tomllib.TOMLDecodeError:
                pass
        if not name:
            name = self.base.strip("/").split("/")[-1] if self.base else os.path.basename(self.tree.repo)
        return name.replace("-", "_")

    def top_module_of(self, path):
        """The top-level module a file belongs to: first component under src/ (no .rs)."""
        first = path[len(self.src) :].split("/")[0]
        return first[:-3] if first.endswith(".rs") else first


def _walk_modules(crate, path, modpath, reachable, is_test, files):
    """Records `path` in the crate's module tree and follows its `mod x;` declarations.

    A child `mod x;` of lib.rs, main.rs or a mod.rs is looked for next to it (x.rs or
    x/mod.rs); of any other file f.rs, under f/. Inline `mod a { mod x; }` adds a/ to that.
    """
    sources = crate.package.tree.sources_by_path
    if path in crate.files:
        return
    crate.files[path] = (modpath, reachable)
    sf = sources[path]
    if is_test:
        sf.file_is_test = True
    if path == crate.root or path.endswith("/mod.rs"):
        directory = os.path.dirname(path)
    else:
        directory = path[:-3]
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*;", sf.masked):
        name = m.group(1)
        public = preceded_by_pub(sf.masked, m.start())
        test = bool(CFG_TEST.search(attributes_before(sf.masked, m.start())))
        inline = sf.enclosing(m.start(), "mod")
        if modpath == () and not inline:
            crate.top_modules[name] = public
        sub = os.path.join(directory, *[b.name for b in inline])
        for candidate in (f"{sub}/{name}.rs", f"{sub}/{name}/mod.rs"):
            if candidate in files:
                child_reach = reachable and public and all(b.public for b in inline)
                child_test = is_test or test or any(b.test for b in inline)
                inner = modpath + tuple(b.name for b in inline) + (name,)
                _walk_modules(crate, candidate, inner, child_reach, child_test, files)
                break
    if modpath != ():
        return
    for block in sf.blocks:  # inline modules of the root
        if block.kind == "mod" and not sf.enclosing(block.open_at, "mod"):
            crate.top_modules[block.name] = block.public
    for m in re.finditer(r"\buse\s+([^;]*);", sf.masked):
        if sf.enclosing(m.start()):
            continue  # inside a module, impl or trait block
        for full, bound in expand_use(m.group(1)):
            if bound == "*":
                crate.root_globs.append(full[:-1])
            elif bound and bound != "self":
                crate.root_imports[bound] = full


def load(tree):
    """Parses every source file of a side and builds its packages and crates."""
    files = tree.sources()
    tree.sources_by_path = {p: SourceFile(p, tree.read(p)) for p in files}
    bases = sorted({re.match(r"^((?:crates/[^/]+/)?)src/", p).group(1) for p in files})
    return [Package(tree, base, [p for p in files if p.startswith(base + "src/")]) for base in bases]


# ----------------------------------------------------------------------------------------
# Measures


def file_rows(before, after):
    """Pairs the files of both sides: same path, or src/X with crates/<dir>/src/X."""
    b_files, a_files = before.sources_by_path, after.sources_by_path
    rows = []
    common = sorted(set(b_files) & set(a_files))
    only_b = sorted(set(b_files) - set(a_files))
    only_a = sorted(set(a_files) - set(b_files))

    def key(p):
        return re.sub(r"^crates/[^/]+/", "", p)

    for p in common:
        rows.append((p, b_files[p].lines, a_files[p].lines, ""))
    for p in list(only_a):
        same = [q for q in only_b if key(q) == key(p)]
        if len(same) == 1 and sum(1 for r in only_a if key(r) == key(p)) == 1:
            q = same[0]
            only_b.remove(q)
            only_a.remove(p)
            rows.append((f"{q} → {p}", b_files[q].lines, a_files[p].lines, "moved"))
    for p in only_a:
        rows.append((p, None, a_files[p].lines, "after only"))
    for p in only_b:
        rows.append((p, b_files[p].lines, None, "before only"))
    rows.sort(key=lambda r: (-(r[2] if r[2] is not None else -1), -(r[1] or 0), r[0]))
    return rows


def longest_functions(tree, with_tests, count=10):
    """The `count` longest functions of a side: (lines, name, path:line)."""
    found = []
    for path, sf in tree.sources_by_path.items():
        for name, first, lines, is_test in sf.functions():
            if is_test and not with_tests:
                continue
            found.append((lines, name, f"{path}:{first}"))
    found.sort(key=lambda f: (-f[0], f[2]))
    return found[:count]


ITEM_RE = re.compile(
    r"\bpub\s+(?:(?:async|const|unsafe|default)\s+)*(?:extern\s*(?:\"[^\"]*\"\s*)?)?"
    r"(fn|struct|enum|trait|type|const|static|mod|use|union)\b"
)


RESTRICTED = "restricted: pub(crate) / pub(super) / pub(in ..)"
OTHER_PUB = "other `pub` (e.g. in a macro)"
NAMED_FIELD_RE = re.compile(r"pub\s+" + IDENT + r"\s*:(?!:)")
RESTRICTED_RE = re.compile(r"pub\s*\(")


def public_items(packages):
    """Counts `pub` per crate and kind: {(crate label, kind, 'reachable'|'private'|'all'): n}."""
    counts = collections.Counter()
    for package in packages:
        for crate in package.crates:
            label = crate.label
            for path, (_modpath, reachable) in crate.files.items():
                sf = package.tree.sources_by_path[path]
                text = sf.masked
                for m in re.finditer(r"\bpub\b", text):
                    if RESTRICTED_RE.match(text, m.start()):
                        counts[(label, RESTRICTED, "all")] += 1
                        continue
                    reach = reachable and all(b.public for b in sf.enclosing(m.start(), "mod"))
                    where = "reachable" if reach else "private"
                    item = ITEM_RE.match(text, m.start())
                    if item:
                        kind = item.group(1)
                        if kind in ("fn", "const", "type") and sf.enclosing(m.start(), "impl"):
                            kind += " (in impl)"
                        if kind == "use":
                            semi = text.find(";", item.end())
                            names = expand_use(text[item.end() : semi])
                            counts[(label, "use (re-exported names)", where)] += len(names)
                        else:
                            counts[(label, kind, where)] += 1
                    elif NAMED_FIELD_RE.match(text, m.start()):
                        counts[(label, "field (named)", where)] += 1
                    elif prev_char(text, m.start()) in ("(", ","):
                        counts[(label, "field (tuple)", where)] += 1
                    else:
                        counts[(label, OTHER_PUB, where)] += 1
            declared = crate.top_modules.values()
            counts[(label, "modules declared in the root: pub", "all")] = sum(1 for v in declared if v)
            counts[(label, "modules declared in the root: private", "all")] = sum(1 for v in declared if not v)
    return counts


class Graph:
    """Edges between top-level modules, each with where it was seen and whether only in tests."""

    def __init__(self):
        self.edges = {}  # (a, b) -> {"where": "path:line", "test_only": bool}
        self.unresolved = collections.Counter()  # `crate::x` naming no module: x -> count

    def add(self, a, b, where, is_test):
        """Adds a -> b, keeping the first place seen outside tests if there is one."""
        if a == b:
            return
        e = self.edges.get((a, b))
        if e is None or (e["test_only"] and not is_test):
            self.edges[(a, b)] = {"where": where, "test_only": is_test}

    def adjacency(self, include_tests):
        """Successor sets, with or without the edges seen only in test code."""
        adj = collections.defaultdict(set)
        for (a, b), e in self.edges.items():
            if include_tests or not e["test_only"]:
                adj[a].add(b)
        return adj


INTRA = "(inside its own module)"


class Resolver:
    """Resolves paths (`crate::a::b`, `super::x`, `other_crate::m`) to module-graph nodes."""

    def __init__(self, packages):
        self.libs = {p.crate_name: p.lib for p in packages if p.lib}
        declared = collections.Counter(m for lib in self.libs.values() for m in lib.top_modules)
        # a module's node is its bare name, unless two library crates both have one so named
        self.shared = {m for m, n in declared.items() if n > 1}

    def node(self, crate, module):
        """The node name of a library crate's top-level module."""
        return f"{crate.name}::{module}" if module in self.shared else module

    def in_crate(self, lib, segments, depth=0):
        """The node that `<lib>::<segments>` names: a module, or a name the root imports."""
        if not segments or depth > 8:
            return None
        first = segments[0]
        if first in lib.top_modules:
            return self.node(lib, first)
        if first in lib.root_imports:
            return self.at_root(lib, lib.root_imports[first], depth + 1)
        for glob in lib.root_globs:
            found = self.at_root(lib, glob + (first,), depth + 1)
            if found:
                return found
        return None

    def at_root(self, lib, path, depth):
        """Resolves a path written in a library's root file (as in its `use` lines)."""
        if not path:
            return None
        head = path[0]
        if head in ("crate", "$crate", "self"):
            return self.in_crate(lib, path[1:], depth)
        if head in lib.top_modules:
            return self.node(lib, head)
        if head in self.libs and self.libs[head] is not lib:
            return self.in_crate(self.libs[head], path[1:], depth)
        return None

    def resolve(self, crate, path, modpath):
        """What `path`, written at module `modpath` of `crate`, names: a node, INTRA or None."""
        head = path[0]
        if head in ("crate", "$crate", "super", "self"):
            if crate.kind == "bin":
                return INTRA  # a binary crate is one node
            here, k = list(modpath), 0
            while k < len(path) and path[k] in ("super", "self"):
                if path[k] == "super" and here:
                    here.pop()
                k += 1
            if head in ("crate", "$crate"):
                return self.in_crate(crate, path[1:])
            if here:
                return INTRA  # super:: that stays below the root stays in the same module
            return self.in_crate(crate, path[k:])
        if head in self.libs and self.libs[head] is not crate:
            return self.in_crate(self.libs[head], path[1:])
        return None


def module_graph(packages):
    """Builds the top-level module graph of a side (see the module docstring, point 4)."""
    graph, resolver = Graph(), Resolver(packages)
    heads = [r"\$?crate", "super", "self"] + [re.escape(name) for name in resolver.libs]
    # a path's first segment: not preceded by a word, `$`, or `x::` (`::name` is allowed)
    start_re = re.compile(r"(?<![\w$])(?<!\w::)(?<!\w\s::)(?:" + "|".join(heads) + r")\s*::")
    path_re = re.compile(r"((?:(?:\$?crate|\w+)\s*::\s*)+)(\{|" + IDENT + r")?")
    for package in packages:
        for crate in package.crates:
            for path, (modpath, _reachable) in crate.files.items():
                if crate.kind == "lib" and path == crate.root:
                    continue  # the root only declares modules and re-exports
                sf = package.tree.sources_by_path[path]
                source = crate.node if crate.kind == "bin" else resolver.node(crate, package.top_module_of(path))
                for m in start_re.finditer(sf.masked):
                    found = path_re.match(sf.masked, m.start())
                    segments = tuple(s.strip() for s in found.group(1).split("::") if s.strip())
                    tails = []
                    if found.group(2) == "{":
                        brace = found.end(2) - 1
                        close = sf.pairs.get(brace, brace)
                        tails = [segments + full for full, _ in expand_use(sf.masked[brace : close + 1])]
                    else:
                        tails = [segments + ((found.group(2),) if found.group(2) else ())]
                    inline = tuple(b.name for b in sf.enclosing(m.start(), "mod"))
                    for full in tails:
                        target = resolver.resolve(crate, full, modpath + inline)
                        if target is None:
                            if full[0] in ("crate", "$crate") and len(full) > 1:
                                graph.unresolved[full[1]] += 1
                            continue
                        if target != INTRA:
                            where = f"{path}:{sf.line_of(m.start())}"
                            graph.add(source, target, where, sf.in_test(m.start()))
    return graph


def strongly_connected(adj):
    """Tarjan's algorithm: the strongly connected components of a graph."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    nodes = set(adj) | {b for bs in adj.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def example_cycle(adj, component):
    """A shortest cycle through the component's first member, staying inside the component."""
    start, members = component[0], set(component)
    parent, queue = {start: None}, collections.deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(adj.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return list(reversed(path)) + [start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return component


# ----------------------------------------------------------------------------------------
# Output


def fmt(n):
    return "—" if n is None else str(n)


def delta(b, a):
    if b is None or a is None:
        return ""
    return f"{a - b:+d}"


def print_lines_table(before, after):
    """Table 1: lines per file."""
    print("## 1. Lines per file\n")
    print(
        "Lines as `wc -l` counts them. Every `*.rs` under `src/` and `crates/*/src/`, sorted by "
        "the after side. `old → new`: the same file under `src/` and a `crates/<dir>/src/`.\n"
    )
    print("| file | before | after | Δ | note |")
    print("|---|---:|---:|---:|---|")
    rows = file_rows(before, after)
    for name, b, a, note in rows:
        print(f"| `{name}` | {fmt(b)} | {fmt(a)} | {delta(b, a)} | {note} |")
    tb = sum(sf.lines for sf in before.sources_by_path.values())
    ta = sum(sf.lines for sf in after.sources_by_path.values())
    print(f"| **total ({len(before.sources_by_path)} → {len(after.sources_by_path)} files)** | "
          f"**{tb}** | **{ta}** | **{delta(tb, ta)}** | |")
    xb = sum(sf.test_lines() for sf in before.sources_by_path.values())
    xa = sum(sf.test_lines() for sf in after.sources_by_path.values())
    print(f"| of which in `#[cfg(test)]` modules | {xb} | {xa} | {delta(xb, xa)} | |")
    print(f"| without them | {tb - xb} | {ta - xa} | {delta(tb - xb, ta - xa)} | |")
    print()


def print_functions_table(before, after, with_tests):
    """Table 2: the ten longest functions of each side."""
    print("## 2. The ten longest functions\n")
    print(
        "Lines from the `fn` line to the closing brace, inclusive; braces matched outside "
        "comments, strings, raw strings and char literals. "
        + ("Test code included." if with_tests else
           "Test code left out (`#[cfg(test)]` modules, `#[test]` functions).")
        + " `Type::name` for a method (the impl's or trait's type).\n"
    )
    fb, fa = longest_functions(before, with_tests), longest_functions(after, with_tests)
    print("| # | before: function | lines | after: function | lines |")
    print("|---:|---|---:|---|---:|")
    for k in range(max(len(fb), len(fa))):
        left = f"`{fb[k][1]}` ({fb[k][2]}) | {fb[k][0]}" if k < len(fb) else " | "
        right = f"`{fa[k][1]}` ({fa[k][2]}) | {fa[k][0]}" if k < len(fa) else " | "
        print(f"| {k + 1} | {left} | {right} |")
    sb = sum(f[0] for f in fb)
    sa = sum(f[0] for f in fa)
    print(f"| | **sum of the ten** | **{sb}** | | **{sa}** |")
    print()


ITEM_KINDS = [
    "mod", "use (re-exported names)", "fn", "fn (in impl)", "struct", "enum", "trait",
    "type", "type (in impl)", "const", "const (in impl)", "static", "union",
]


def print_public_table(before_pk, after_pk):
    """Table 3: public items, reachable from the crate root or not."""
    print("## 3. Public items\n")
    print(
        "Each `pub` (not `pub(crate)`/`pub(super)`/`pub(in ..)`) that starts an item. "
        "*Reachable*: every module from the crate root down to the item is declared `pub mod` "
        "(a lexical check: it does not ask whether the item's own type is reachable, nor "
        "follow re-exports). *Private*: somewhere on the way a module is `mod` or "
        "`pub(crate) mod` (`#[cfg(test)] mod tests` included). `pub use` counts one per "
        "re-exported name. Methods and associated items: `(in impl)`. Fields are counted "
        "apart from the items. Root modules: the `mod` declarations in lib.rs / main.rs.\n"
    )
    cb, ca = public_items(before_pk), public_items(after_pk)
    labels = sorted({k[0] for k in cb} | {k[0] for k in ca}, key=lambda s: (not s.startswith("lib"), s))
    print("| crate | what | before: reachable | before: private | after: reachable | after: private |")
    print("|---|---|---:|---:|---:|---:|")

    def total(counts, label, kinds, where):
        """Sum over kinds, or — when the crate is not on that side."""
        if not any(k[0] == label for k in counts):
            return "—"
        return str(sum(counts.get((label, kind, where), 0) for kind in kinds))

    def row(label, what, kinds, split=True, bold=False):
        b = "**" if bold else ""
        if split:
            cells = [total(c, label, kinds, w) for c in (cb, ca) for w in ("reachable", "private")]
        else:
            cells = [total(cb, label, kinds, "all"), "", total(ca, label, kinds, "all"), ""]
        cells = [f"{b}{c}{b}" if c else c for c in cells]
        print(f"| {label} | {b}{what}{b} | " + " | ".join(cells) + " |")

    for label in labels:
        kinds = {k[1] for k in list(cb) + list(ca) if k[0] == label}
        item_kinds = [k for k in ITEM_KINDS if k in kinds]
        if label.startswith("bin"):  # a binary: nothing outside can name its items
            row(label, "pub items, total (a binary crate)", item_kinds, bold=True)
            continue
        row(label, "root modules: `pub mod`", ["modules declared in the root: pub"], split=False)
        row(label, "root modules: private", ["modules declared in the root: private"], split=False)
        for kind in item_kinds:
            row(label, f"pub {kind}", [kind])
        row(label, "pub items, total", item_kinds, bold=True)
        row(label, "pub struct fields (named + tuple)", ["field (named)", "field (tuple)"])
        row(label, "not counted: `pub(..)`", [RESTRICTED], split=False)
        if OTHER_PUB in kinds:
            row(label, "not counted: other `pub`", [OTHER_PUB])
    libs = [label for label in labels if label.startswith("lib")]
    if len(libs) > 1:
        cells = []
        for counts in (cb, ca):
            for where in ("reachable", "private"):
                cells.append(str(sum(v for k, v in counts.items()
                                     if k[0] in libs and k[1] in ITEM_KINDS and k[2] == where)))
        print("| all library crates | **pub items, total** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    print()


def print_cycles(before_pk, after_pk, core):
    """Table 4: cycles between top-level modules, and the core's outgoing edges."""
    print("## 4. Import cycles between top-level modules\n")
    print(
        "A → B when code in A (comments excluded) names `crate::B…` (also inside "
        "`use crate::{…}` groups), a `super::` path that reaches the crate root and then B, or "
        "`<another crate of this tree>::B…`; a name the crate root imports stands for the module "
        "it comes from. A top-level module is the first path component under its package's "
        "`src/`; a binary crate (main.rs) is one node, `main`. A cycle is a strongly connected "
        "component of more than one module; the path shown is a shortest cycle through its "
        "first member (by name), with the first place each of its edges is seen.\n"
    )
    graphs = {"before": module_graph(before_pk), "after": module_graph(after_pk)}
    found = {}
    for side, graph in graphs.items():
        for include in (True, False):
            adj = graph.adjacency(include)
            found[(side, include)] = (adj, [c for c in strongly_connected(adj) if len(c) > 1])
    print("| | before | after |")
    print("|---|---:|---:|")
    for include, label in ((True, "cycles (all code)"), (False, "cycles (test code left out)")):
        print(f"| {label} | {len(found[('before', include)][1])} | {len(found[('after', include)][1])} |")
    nodes = {s: len({n for e in g.edges for n in e}) for s, g in graphs.items()}
    print(f"| modules in the graph | {nodes['before']} | {nodes['after']} |")
    edges = {s: (len(g.edges), sum(1 for e in g.edges.values() if not e["test_only"])) for s, g in graphs.items()}
    print(f"| edges (all code) | {edges['before'][0]} | {edges['after'][0]} |")
    print(f"| edges (test code left out) | {edges['before'][1]} | {edges['after'][1]} |")
    print()
    for side, graph in graphs.items():
        for include in (True, False):
            adj, comps = found[(side, include)]
            what = "all code" if include else "test code left out"
            print(f"**{side}, {what}: {len(comps)} cycle(s)**" + ("\n" if comps else ""))
            for k, comp in enumerate(comps, 1):
                path = example_cycle(adj, comp)
                print(f"{k}. {{{', '.join(comp)}}} ({len(comp)} modules): {' → '.join(path)}")
                for a, b in zip(path, path[1:]):
                    e = graph.edges[(a, b)]
                    print(f"   - {a} → {b}: `{e['where']}`" + (" (test code)" if e["test_only"] else ""))
            print()
        if graph.unresolved:
            names = ", ".join(f"`{n}` ({c})" for n, c in sorted(graph.unresolved.items()))
            print(f"{side}: `crate::x` naming no top-level module (an item of the root, or unknown; "
                  f"no edge): {names}\n")
    print("### Edges from the core modules\n")
    print("The modules each core module names (\\* = only from test code).\n")
    print("| core module | before: names | after: names |")
    print("|---|---|---|")
    for mod in core:
        cells = []
        for graph in graphs.values():
            targets = sorted((b, e["test_only"]) for (a, b), e in graph.edges.items() if a.split("::")[-1] == mod)
            star = "\\*"
            cells.append(", ".join(b + (star if t else "") for b, t in targets) or "(none)")
        print(f"| {mod} | {cells[0]} | {cells[1]} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="a commit")
    parser.add_argument("after", help=f"a commit, or {WORKTREE} for the files on disk")
    parser.add_argument("--repo", default=None, help="the repository (default: the one around cwd)")
    parser.add_argument("--core", default=DEFAULT_CORE, help=f"core modules (default {DEFAULT_CORE})")
    parser.add_argument("--with-tests", action="store_true", help="count test functions in table 2")
    args = parser.parse_args()
    repo = args.repo or git(os.getcwd(), "rev-parse", "--show-toplevel").strip()
    before, after = Tree(repo, args.before), Tree(repo, args.after)
    before_pk, after_pk = load(before), load(after)
    print("# Code statistics\n")
    print(f"- before: {before.label}")
    print(f"- after: {after.label}")
    print("- measured by `scripts/code_stats.py` (the method is in its docstring; read from the "
          "text, nothing compiled)\n")
    print_lines_table(before, after)
    print_functions_table(before, after, args.with_tests)
    print_public_table(before_pk, after_pk)
    print_cycles(before_pk, after_pk, [c.strip() for c in args.core.split(",") if c.strip()])


if __name__ == "__main__":
    main()
