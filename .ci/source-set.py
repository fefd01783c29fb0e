#!/usr/bin/env python3
"""Checks that the Nix package's source set holds every file the Rust code reads.

Reads the source set (a JSON list of repository-relative paths, from
nix/tests/source-set.nix) on stdin. Finds what the build and the tests read: Cargo.toml,
Cargo.lock, every .rs file, `include_str!`/`include_bytes!` arguments (relative to the including file), and paths
built on `CARGO_MANIFEST_DIR` (e.g. "{}/tests/fixtures/{path}"). Each must exist and lie
inside the source set. Prints one line per file and exits 1 if any is missing.

Usage: nix-instantiate --eval --strict --json nix/tests/source-set.nix | python3 .ci/source-set.py
"""
import json
import os
import re
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
INCLUDE = re.compile(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)')
# A literal beside CARGO_MANIFEST_DIR: "{}/tests/fixtures/{path}" or "/tests/fixtures/x.json".
MANIFEST_LITERAL = re.compile(r'"(?:\{\})?/([^"{}]+)')


def read_by_rust():
    """Yields (path the build or the tests read, what reads it)."""
    yield "Cargo.toml", "cargo"
    yield "Cargo.lock", "cargo --locked"
    for directory in ("src", "tests", "benches", "examples", "build.rs"):
        top = os.path.join(ROOT, directory)
        files = [top] if os.path.isfile(top) else [
            os.path.join(d, f) for d, _, names in os.walk(top) for f in names if f.endswith(".rs")
        ]
        for path in sorted(files):
            text = open(path, encoding="utf-8").read()
            where = os.path.relpath(path, ROOT)
            yield where, "rustc"
            for match in INCLUDE.finditer(text):
                target = os.path.normpath(os.path.join(os.path.dirname(path), match.group(1)))
                yield os.path.relpath(target, ROOT), where
            lines = text.splitlines()
            for number, line in enumerate(lines):
                if "CARGO_MANIFEST_DIR" not in line:
                    continue
                # The path is spelled on that line or on one beside it (rustfmt may wrap).
                window = "\n".join(lines[max(0, number - 1) : number + 2])
                for literal in MANIFEST_LITERAL.finditer(window):
                    yield os.path.normpath(literal.group(1)), where


def main():
    source_set = json.load(sys.stdin)
    reads = sorted(set(read_by_rust()))
    failed = 0
    for target, where in reads:
        inside = [root for root in source_set if target == root or target.startswith(root + "/")]
        if target.startswith("..") or not os.path.exists(os.path.join(ROOT, target)):
            failed += 1
            print(f"FAIL {target} (read by {where}) is not a file of the repository")
        elif not inside:
            failed += 1
            print(f"FAIL {target} (read by {where}) is not in nix/package.nix's source set {source_set}")
        elif where != "rustc":
            print(f"ok   {target} (read by {where}) is in the source set as {inside[0]}")
    sources = sum(1 for _, where in reads if where == "rustc")
    print(f"checked {sources} .rs files and {len(reads) - sources} other reads against {source_set}")
    if not reads:
        print("FAIL found no file read by the Rust code; the patterns in .ci/source-set.py are stale")
        failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
