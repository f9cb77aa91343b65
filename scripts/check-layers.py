#!/usr/bin/env python3
"""check-layers.py -- the source folders are layers, and includes go down.

Usage: check-layers.py [SRC_DIR]     (default: the src/ beside this script)

The library's folders under src/ are ranked in LAYERS, lowest first. A file
may include headers of its own folder and of any folder ranked below it,
always by folder path ("dns/lookup.h"), never by bare name: the path shows
the edge to a reader and lets this check see it. The command (src/cli/) sits
above every library folder and reaches the library through the public
header only.

Fails (exit 1, one line per problem) when:
  - a file includes a header of a higher layer (an upward edge);
  - an internal header is included by bare name or a path that is not there;
  - the folder graph the includes draw has a cycle (reported with its path,
    should the ranks above ever be edited into allowing one);
  - a folder holds C sources but is not ranked (a new folder must take a
    place in the order, in this file and in docs/architecture.md).
Exit 0 prints a one-line summary. The suite runs it on the real tree and on
copies with a planted upward include and a planted cycle (tests/layers.sh).
"""
import os
import re
import sys

# Lowest first. Keep in step with docs/architecture.md ("The layers").
LAYERS = ["base", "core", "dns", "plan", "policy", "route", "smtp",
          "deliver", "engine", "cli"]
# Folders that may include only the public header, whatever their rank.
PUBLIC_ONLY = {"cli"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(src):
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                yield folder, os.path.join(path, name)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield lineno, m.group(1)


def target_folder(src, folder, inc):
    """The folder an include reaches, or None when it is not a library
    header reached by folder path."""
    if "/" not in inc:
        # A header of the command's own folder is fine by bare name there.
        if folder in PUBLIC_ONLY and os.path.exists(
                os.path.join(src, folder, inc)):
            return folder
        return None
    top = inc.split("/", 1)[0]
    return top if os.path.exists(os.path.join(src, inc)) else None


def find_cycle(edges):
    """A list of folders forming a cycle in edges {a: {b, ...}}, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(edges):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check(src):
    problems, edges, files = [], {}, 0
    rank = {name: i for i, name in enumerate(LAYERS)}
    for folder, path in sources(src):
        files += 1
        rel = os.path.relpath(path, os.path.dirname(src))
        if folder not in rank:
            problems.append(f"{rel}: folder '{folder}' has no layer "
                            f"(add it to LAYERS in {sys.argv[0]})")
            continue
        for lineno, inc in includes(path):
            if inc in ("mxroute.h",) or inc.startswith("mxroute/"):
                continue  # the public API, open to every layer
            to = target_folder(src, folder, inc)
            where = f"{rel}:{lineno}: #include \"{inc}\""
            if to is None:
                problems.append(f"{where}: not a header under src/ reached "
                                "by its folder path")
                continue
            if to not in rank:
                problems.append(f"{where}: folder '{to}' has no layer")
                continue
            if folder in PUBLIC_ONLY and to != folder:
                problems.append(f"{where}: {folder}/ uses the public "
                                "header only")
            elif rank[to] > rank[folder]:
                problems.append(f"{where}: {folder}/ may not include the "
                                f"higher layer {to}/")
            if to != folder:
                edges.setdefault(folder, set()).add(to)
    cycle = find_cycle(edges)
    if cycle:
        problems.append("folder cycle: " + " -> ".join(cycle))
    return problems, files, edges


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..",
                                                             "src")
    src = os.path.normpath(src)
    if not os.path.isdir(src):
        print(f"check-layers: no source folder at {src}", file=sys.stderr)
        return 2
    problems, files, edges = check(src)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s) in {files} files")
        return 1
    if files == 0:
        print(f"check-layers: no sources found under {src}")
        return 1
    n = sum(len(v) for v in edges.values())
    print(f"check-layers: {files} files, {n} folder edges, all downward, "
          "no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
