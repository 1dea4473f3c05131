#!/usr/bin/python3
"""Function lengths in C files: fails when a function definition is longer than --max lines (the house
rule: none in src/ over 120), or lists the --top N longest.

A function's length runs from the first line of its signature to its closing brace, both included. The
file is scanned with comments, string and character literals and preprocessor lines blanked out (a brace
in any of them does not count), so top-level braces are matched exactly; a top-level block is a function
when its header (the text since the previous top-level `;` or `}`) ends with a parameter list and has no
`=` (an initialiser) and is not a struct, union or enum body. Standard library only.

usage: tools/function_lengths.py [--max N] [--top N] [PATH ...]   (PATH: files or folders; default src)
"""
import argparse
import os
import re
import sys

C_SUFFIXES = ('.c', '.h')


def blank_non_code(text):
    """The text with comments, literals and preprocessor lines replaced by spaces (newlines kept), so
    that line numbers and columns are unchanged and only real code braces remain."""
    out = list(text)
    i, n = 0, len(text)
    at_line_start = True  # only whitespace so far on this line: a '#' here opens a directive

    def blank(start, end):
        for j in range(start, end):
            if out[j] != '\n':
                out[j] = ' '

    while i < n:
        c = text[i]
        if c == '\n':
            at_line_start = True
            i += 1
            continue
        if c in ' \t\r\f\v':
            i += 1
            continue
        if at_line_start and c == '#':
            # a directive runs to the end of the line, continued by a trailing backslash; comments inside
            # it are blanked with it (a /* opened here may close on a later line)
            j = i
            while j < n and text[j] != '\n':
                if text.startswith('/*', j):
                    k = text.find('*/', j + 2)
                    j = n if k < 0 else k + 2
                    continue
                if text[j] == '\\' and j + 1 < n and text[j + 1] == '\n':
                    j += 2
                    continue
                j += 1
            blank(i, j)
            i = j
            continue
        at_line_start = False
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            blank(i, j)
            i = j
        else:
            i += 1
    return ''.join(out)


AGGREGATE_HEAD = re.compile(r'^(?:typedef\s+)?(?:struct|union|enum)\b[^()]*$')
CALL_LIKE = re.compile(r'([A-Za-z_]\w*)\s*\(')
NOT_A_NAME = {'void', 'char', 'short', 'int', 'long', 'float', 'double', 'signed', 'unsigned', 'const',
              'volatile', 'static', 'inline', 'extern', 'struct', 'union', 'enum', 'sizeof', 'return',
              'if', 'for', 'while', 'switch'}


def without_attributes(header):
    """The header without __attribute__((...)) groups (their parentheses nest)."""
    while True:
        m = re.search(r'__attribute__\s*\(', header)
        if not m:
            return header
        depth, i = 0, m.end() - 1
        while i < len(header):
            depth += {'(': 1, ')': -1}.get(header[i], 0)
            i += 1
            if depth == 0:
                break
        header = header[:m.start()] + ' ' + header[i:]


def function_name(header):
    """The declared name: the first identifier followed by a parenthesis that is not a keyword (so
    `void (*handler(int k))(int)` gives handler)."""
    for m in CALL_LIKE.finditer(header):
        if m.group(1) not in NOT_A_NAME:
            return m.group(1)
    return None


def is_function_header(header):
    h = ' '.join(without_attributes(header).split())
    if not h or '=' in h.replace('==', '').replace('!=', '').replace('<=', '').replace('>=', ''):
        return False
    if AGGREGATE_HEAD.match(h):
        return False
    return h.endswith(')') and function_name(h) is not None


def functions(path):
    """(name, first line, last line) of each function defined in the file, lines counted from 1, plus a
    list of warnings where the file defeats the scan (unbalanced braces)."""
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    code = blank_non_code(text)
    line_starts = [0]
    for i, c in enumerate(code):
        if c == '\n':
            line_starts.append(i + 1)

    def line_of(offset):
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    found, warnings = [], []
    depth, header_start, open_at, open_header = 0, 0, None, None
    for i, c in enumerate(code):
        if c == '{':
            if depth == 0:
                open_at, open_header = i, (header_start, i)
            depth += 1
        elif c == '}':
            depth -= 1
            if depth < 0:
                warnings.append(f'{path}:{line_of(i)}: unmatched closing brace; the scan restarts here')
                depth = 0
            if depth == 0 and open_at is not None:
                start, end = open_header
                header = code[start:end]
                if is_function_header(header):
                    first = start + len(header) - len(header.lstrip())
                    found.append((function_name(without_attributes(header)), line_of(first), line_of(i)))
                open_at = None
                header_start = i + 1
        elif c == ';' and depth == 0:
            header_start = i + 1
    if depth != 0:
        warnings.append(f'{path}: {depth} brace(s) left open at the end of the file')
    return found, warnings


def c_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    if name.endswith(C_SUFFIXES):
                        yield os.path.join(root, name)
        else:
            yield p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--max', type=int, default=120, help='longest allowed function, in lines (default 120)')
    ap.add_argument('--top', type=int, metavar='N', help='list the N longest functions instead of checking')
    ap.add_argument('paths', nargs='*', default=['src'], help='C files or folders (default src)')
    args = ap.parse_args()

    all_functions, warnings = [], []
    for path in c_files(args.paths):
        found, w = functions(path)
        warnings += w
        all_functions += [(last - first + 1, path, first, name) for name, first, last in found]
    for w in warnings:
        print('warning: ' + w, file=sys.stderr)

    if args.top is not None:
        for length, path, first, name in sorted(all_functions, key=lambda f: (-f[0], f[1], f[2]))[:args.top]:
            print(f'{path}:{first}: {name} {length} lines')
        return 0
    too_long = sorted((f for f in all_functions if f[0] > args.max), key=lambda f: (f[1], f[2]))
    for length, path, first, name in too_long:
        print(f'{path}:{first}: {name} is {length} lines (more than {args.max})')
    if too_long:
        print(f'{len(too_long)} function(s) longer than {args.max} lines: split them', file=sys.stderr)
    return 1 if too_long or warnings else 0


if __name__ == '__main__':
    sys.exit(main())
