"""The package keeps its shape (counted by `benchmarks/layout.py`, printed in the development guide)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('layout', ROOT / 'benchmarks' / 'layout.py')
layout = importlib.util.module_from_spec(spec); spec.loader.exec_module(layout)


def test_module_and_function_sizes():
    sizes = layout.module_sizes()
    assert sizes['engine.py'] <= 300, sizes['engine.py']
    assert all(n <= 450 for n in sizes.values()), {k: v for k, v in sizes.items() if v > 450}
    assert layout.long_functions() == []


def test_no_stage_branch_or_model_isinstance_outside_the_stages():
    assert layout.stage_branches() == []


def test_the_counter_finds_what_it_counts(tmp_path):
    "The checks above can fail: a planted branch, isinstance and long function are each found."
    (tmp_path / 'bad.py').write_text("def f(cfg, m):\n    if cfg['stage'] == 'mae': pass\n    if isinstance(m, Classifier): pass\n"
                                     + ''.join(f'    x{i} = {i}\n' for i in range(40)))
    assert [k for _, _, k in layout.stage_branches(tmp_path)] == ['stage comparison', 'isinstance on a model class']
    assert layout.long_functions(tmp_path) == [('bad.py', 'f', 43)]


def test_the_development_guide_prints_the_current_counts():
    guide = (ROOT / 'nbs' / 'guides' / 'development.md').read_text()
    assert layout.report() in guide, layout.report()


def test_most_export_cells_are_followed_by_an_example():
    lines, exports, shown = layout.notebook_rhythm()
    assert shown >= 0.75 * exports, (shown, exports)


def test_plain_lines_and_no_import_cycles():
    assert layout.long_lines() == []
    assert layout.semicolon_joins() == []
    assert layout.import_cycles() == [], layout.import_cycles()


def test_the_line_and_cycle_counters_can_fail(tmp_path):
    "A planted long line, `;` join and a cycle through an import inside a function are each found."
    pkg = tmp_path / 'ppma'
    pkg.mkdir()
    (pkg / 'a.py').write_text("__all__ = ['" + 'x' * 130 + "']\nfrom .b import f\nx = 1; y = 2\n")
    (pkg / 'b.py').write_text('def f():\n    from ppma.a import x\n    return "' + 'y' * 130 + '"\n')
    assert layout.long_lines(pkg) == [('b.py', 3)]           # nbdev's generated __all__ is not counted
    assert layout.semicolon_joins(pkg) == [('a.py', 3)]
    assert layout.import_cycles(pkg) == [['a', 'b']]


def test_no_docstring_is_cut_in_two():
    "Issue 28: a docstring written as literals on separate lines keeps only its first; the rest is a lost statement."
    import ast
    cut = []
    for p in sorted((ROOT / 'ppma').glob('*.py')):
        for node in ast.walk(ast.parse(p.read_text())):
            body = getattr(node, 'body', None)
            if isinstance(body, list) and len(body) > 1 and all(
                    isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)
                    for b in body[:2]):
                cut.append((p.name, getattr(node, 'name', 'module')))
    assert cut == []
