#!/usr/bin/env python3
"""Import cycles between mailbeacon's top-level modules (src/<module>.rs or src/<module>/).

Reads every `crate::<module>` path in the sources (use statements and inline paths), builds the
graph "module A names module B", and prints its strongly connected components of more than one
module: each is a cycle. Exits 1 when there is one. Usage: python3 tools/module_cycles.py [--edges]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def top_modules():
    mods = set()
    for name in os.listdir(SRC):
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            mods.add(name[:-3])
        elif os.path.isdir(os.path.join(SRC, name)):
            mods.add(name)
    return mods


def files_of(module):
    single = os.path.join(SRC, module + ".rs")
    if os.path.isfile(single):
        yield single
    folder = os.path.join(SRC, module)
    for root, _, names in os.walk(folder):
        for n in names:
            if n.endswith(".rs"):
                yield os.path.join(root, n)


def strip_tests(text):
    # `#[cfg(test)] mod tests { ... }` at the end of a file, and test-only files, are not the
    # module's dependencies.
    i = text.find("#[cfg(test)]\nmod tests {")
    return text if i < 0 else text[:i]


def edges(mods):
    graph = {m: set() for m in mods}
    for m in mods:
        for path in files_of(m):
            if os.path.basename(path) == "tests.rs" or "/tests/" in path:
                continue
            text = strip_tests(open(path, encoding="utf-8").read())
            # Comments name modules without depending on them.
            text = "\n".join(line.split("//")[0] for line in text.splitlines())
            for used in re.findall(r"crate::(\w+)", text):
                # `use crate::{a, b::c}` groups
                if used in mods and used != m:
                    graph[m].add(used)
            for group in re.findall(r"crate::\{([^}]*)\}", text, re.S):
                for used in re.findall(r"(?:^|[,\s])(\w+)", group):
                    if used in mods and used != m:
                        graph[m].add(used)
    return graph


def components(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    mods = top_modules()
    graph = edges(mods)
    if "--edges" in sys.argv:
        for m in sorted(graph):
            print(f"{m} -> {', '.join(sorted(graph[m])) or '-'}")
    cycles = [c for c in components(graph) if len(c) > 1]
    for c in cycles:
        inner = [f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c]
        print(f"cycle of {len(c)} modules: {', '.join(c)}\n  " + "\n  ".join(inner))
    if not cycles:
        print(f"no import cycle between the {len(mods)} top-level modules")
    return 1 if cycles else 0


sys.exit(main())
