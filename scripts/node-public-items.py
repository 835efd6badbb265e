#!/usr/bin/env python3
"""Count lookout-node's public items: `pub` fn/struct/enum/const/static/type/trait/mod/use
(methods included, fields not) in files whose module is reachable from outside the crate
(every `mod` on the path from lib.rs declared plain `pub`), outside `mod tests`. With -v, list
those whose name appears nowhere in cli/, ui/, tests/, fuzz/ or node/tests/."""
import re, os, sys
root = sys.argv[1]
src = os.path.join(root, 'node/src')
item = re.compile(r'^\s*pub\s+(?:async\s+)?(fn|struct|enum|const|static|type|trait|mod|use)\s+([A-Za-z_][A-Za-z0-9_]*)')
moddecl = re.compile(r'^\s*(pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;')

def walk(path, public):
    yield path, public
    name = os.path.basename(path)
    base = os.path.dirname(path) if name in ('lib.rs', 'mod.rs') else path[:-3]
    for line in open(path):
        m = moddecl.match(line)
        if not m:
            continue
        vis = (m.group(1) or '').strip()
        sub_public = public and vis == 'pub'
        for cand in (os.path.join(base, m.group(2) + '.rs'), os.path.join(base, m.group(2), 'mod.rs')):
            if os.path.exists(cand):
                yield from walk(cand, sub_public)

items = []
for path, public in walk(os.path.join(src, 'lib.rs'), True):
    if not public:
        continue
    in_tests = False
    for n, line in enumerate(open(path), 1):
        if re.match(r'^\s*mod tests', line):
            in_tests = True
        m = item.match(line)
        if m and not in_tests:
            items.append((path[len(root) + 1:], n, m.group(1), m.group(2)))
outside = []
for d in ['cli', 'ui', 'tests', 'fuzz', 'node/tests', 'node/benches']:
    for dirpath, _, files in os.walk(os.path.join(root, d)):
        if '/target' in dirpath:
            continue
        for f in files:
            if f.endswith('.rs'):
                outside.append(open(os.path.join(dirpath, f)).read())
text = '\n'.join(outside)
unused = [i for i in items if i[2] not in ('use', 'mod') and not re.search(r'\b' + re.escape(i[3]) + r'\b', text)]
print(f'public items: {len(items)}; named nowhere outside node/src: {len(unused)}')
if '-v' in sys.argv:
    for u in unused:
        print(*u)
