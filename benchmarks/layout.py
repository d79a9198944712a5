"""The package's layout in numbers: module and function sizes, stage branches, and the notebooks' rhythm.

    python benchmarks/layout.py            # prints the table nbs/guides/development.md shows

Counts (Python `ast` on `ppma/*.py`, notebook JSON for `nbs/[0-9]*.ipynb`):
- lines per module; functions longer than 40 lines (decorators included);
- comparisons of a stage name with a literal (`stage == 'mae'`, `cfg['stage'] in ('a', 'b')`) and `isinstance` on a model
  class outside `ppma/stages.py` (the stage classes);
- code-cell lines (median, p90, max), and the share of export cells followed by an example or test: the next code
  cell uses a name the export cell defines and asserts or shows something (an assert, a `test_*` call, a print or
  plot, or a last line that is an expression the notebook displays). A notebook's imports cell (it defines nothing,
  or only its logger) is not counted: the skeleton puts the hidden test imports after it;
- lines over 120 characters (nbdev's generated `__all__` statement aside) and `;` statement joins;
- import cycles between the package's modules, imports inside functions included.
"""
import ast, io, json, re, statistics, sys, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_CLASSES = {'VideoViT', 'MAEVideoViT', 'Classifier', 'AverageWrapper'}
SHOWS = re.compile(r'\bassert\b|\btest_\w+\(|\bprint\(|\bshow\w*\(|\bplt\.|\bdisplay\(|\bImage\(')


def module_sizes(pkg=ROOT / 'ppma'):
    return {p.name: len(p.read_text().splitlines()) for p in sorted(pkg.glob('*.py')) if p.name != '_modidx.py'}


def long_functions(pkg=ROOT / 'ppma', limit=40):
    "(module, function, lines) for every function longer than `limit` lines."
    out = []
    for p in sorted(pkg.glob('*.py')):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - start + 1 > limit: out.append((p.name, node.name, node.end_lineno - start + 1))
    return out


def _is_literal(node):
    "A string, or a tuple/list/set of them: what a branch on a stage's name compares with."
    if isinstance(node, ast.Constant): return isinstance(node.value, str)
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(_is_literal(e) for e in node.elts)


def _is_stage(node):
    "An expression naming the stage: `stage`, `cfg['stage']`, `x.stage`."
    if isinstance(node, ast.Name): return node.id == 'stage'
    if isinstance(node, ast.Attribute): return node.attr == 'stage'
    if isinstance(node, ast.Subscript): return isinstance(node.slice, ast.Constant) and node.slice.value == 'stage'
    return False


def stage_branches(pkg=ROOT / 'ppma', allowed='stages.py'):
    "(module, line, kind) for each comparison of the stage name and each isinstance on a model class outside `allowed`."
    out = []
    for p in sorted(pkg.glob('*.py')):
        if p.name == allowed: continue
        for node in ast.walk(ast.parse(p.read_text())):
            sides = [node.left, *node.comparators] if isinstance(node, ast.Compare) else []
            if any(map(_is_stage, sides)) and any(map(_is_literal, sides)):
                out.append((p.name, node.lineno, 'stage comparison'))
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'isinstance' and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & MODEL_CLASSES: out.append((p.name, node.lineno, 'isinstance on a model class'))
    return out


def _source(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']


def _defined(src):
    "Names an export cell defines (functions, classes, assignments at its top level)."
    try: tree = ast.parse(src)
    except SyntaxError: return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _demonstrates(src, names):
    "Uses one of `names` and asserts or shows something."
    code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
    try: tree = ast.parse(code)
    except SyntaxError: return False
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    shows = bool(SHOWS.search(code)) or bool(tree.body) and isinstance(tree.body[-1], ast.Expr)
    return bool(used & names) and shows


def notebook_rhythm(nbs=ROOT / 'nbs'):
    "Code-cell line counts, and (export cells, those followed by an example or test)."
    lines, exports, shown = [], 0, 0
    for nb in sorted(nbs.glob('[0-9]*.ipynb')):
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        for i, c in enumerate(cells):
            src = _source(c)
            lines.append(len([l for l in src.splitlines() if not l.startswith('#|')]))
            if not re.search(r'^#\|\s*export', src, re.M) or _defined(src) <= {'log'}: continue
            exports += 1
            nxt = next((_source(d) for d in cells[i + 1:i + 2]), '')
            shown += not re.search(r'^#\|\s*export', nxt, re.M) and _demonstrates(nxt, _defined(src))
    return lines, exports, shown


def long_lines(pkg=ROOT / 'ppma', limit=120):
    "(module, line) of each line over `limit` characters, except in the `__all__` statement nbdev_export writes."
    out = []
    for p in sorted(pkg.glob('*.py')):
        if p.name == '_modidx.py': continue
        text = p.read_text()
        generated = set()
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['__all__']:
                generated |= set(range(node.lineno, node.end_lineno + 1))
        out += [(p.name, i) for i, l in enumerate(text.splitlines(), 1) if len(l) > limit and i not in generated]
    return out


def semicolon_joins(pkg=ROOT / 'ppma'):
    "(module, line) of each `;` between statements."
    out = []
    for p in sorted(pkg.glob('*.py')):
        toks = tokenize.generate_tokens(io.StringIO(p.read_text()).readline)
        out += [(p.name, t.start[0]) for t in toks if t.type == tokenize.OP and t.string == ';']
    return out


def module_imports(pkg=ROOT / 'ppma'):
    "`{module: {package modules it imports}}`, counting imports anywhere in the file (inside functions too)."
    names = {p.stem for p in pkg.glob('*.py')}
    graph = {}
    for p in sorted(pkg.glob('*.py')):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (node.module or '').removeprefix(pkg.name + '.') if node.level == 0 else (node.module or '')
                if node.level == 0 and not (node.module or '').startswith(pkg.name): continue
                if base in names: deps.add(base)
                elif not base: deps |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith(pkg.name + '.')}
        graph[p.stem] = deps - {p.stem}
    return graph


def import_cycles(pkg=ROOT / 'ppma'):
    "Each set of modules that import one another in a circle (strongly connected components of two or more)."
    graph, order, low, stack, out = module_imports(pkg), {}, {}, [], []
    def visit(v):
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack: low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            comp = set()
            while not comp or v not in comp: comp.add(stack.pop())
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(graph):
        if v not in order: visit(v)
    return out


def p90(xs): return sorted(xs)[int(0.9 * (len(xs) - 1))]


def report():
    sizes, (lines, exports, shown) = module_sizes(), notebook_rhythm()
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    rows = [f'modules: {len(sizes)}, largest ' + ', '.join(f'{k} {v}' for k, v in largest),
            f'functions over 40 lines: {len(long_functions())}',
            f'lines over 120 characters: {len(long_lines())}, `;` joins: {len(semicolon_joins())}, '
            f'import cycles: {len(import_cycles())}',
            f'stage branches / model isinstance outside stages.py: {len(stage_branches())}',
            f'notebook code cells: {len(lines)}, median {statistics.median(lines):g} lines, p90 {p90(lines)}, '
            f'max {max(lines)}',
            f'export cells followed by an example or test: {shown} of {exports} ({100 * shown / exports:.0f}%)']
    return '\n'.join(rows)


if __name__ == '__main__':
    print(report())
    if '-v' in sys.argv:
        for row in long_functions() + stage_branches() + long_lines() + semicolon_joins(): print(*row)
        for cycle in import_cycles(): print('cycle:', ' <-> '.join(cycle))
