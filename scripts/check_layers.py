#!/usr/bin/env python3
"""Fails when the agent's folders include each other in a cycle, printing the cycle.

Folders are agent/<name>/; an edge A -> B is a `#include "agent/B/..."` in a file of A.
Usage: python3 scripts/check_layers.py  (from anywhere; prints the graph with -v)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "agent"
INCLUDE = re.compile(r'^#include "agent/([a-z_]+)/', re.M)


def graph():
    edges = {}
    for path in ROOT.rglob("*"):
        if path.suffix not in (".h", ".cc") or path.parent == ROOT:
            continue
        folder = path.relative_to(ROOT).parts[0]
        for target in INCLUDE.findall(path.read_text(errors="replace")):
            if target != folder:
                edges.setdefault(folder, set()).add(target)
    return edges


def find_cycle(edges):
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def main():
    edges = graph()
    if "-v" in sys.argv:
        for folder in sorted(edges):
            print(f"{folder} -> {', '.join(sorted(edges[folder]))}")
    cycle = find_cycle(edges)
    if cycle:
        sys.exit("agent folder include cycle: " + " -> ".join(cycle))
    print("agent folders: no include cycle")


if __name__ == "__main__":
    main()
