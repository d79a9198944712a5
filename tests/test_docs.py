"The docs builder and checker on small inputs: what a page shows, and that broken links are found."
import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'nbs' / '_mkdocs' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_a_page_shows_api_entries_and_no_build_noise():
    build = load('build')
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('#| default_exp core'),
        nbformat.v4.new_markdown_cell('# core\n> Shared utilities.\n\n- skip_exec: true'),
        nbformat.v4.new_code_cell('#| hide\nfrom fastcore.test import test_eq'),
        nbformat.v4.new_code_cell('#| export\nimport os\nfrom pathlib import Path'),
        nbformat.v4.new_code_cell('#| export\ndef atomic_write_text(path, text):\n    "Write `text` to `path` atomically."\n'),
        nbformat.v4.new_code_cell('#| slow\natomic_write_text("x", "y")'),
        nbformat.v4.new_markdown_cell('## `ppma data`\n## Metrics\n## Metrics')])
    page = build.present(nb, 'https://github.com/ppma/ppma')
    text = '\n'.join(c.source for c in page.cells)
    assert '#|' not in text and 'skip_exec' not in text and 'fastcore.test' not in text and 'import os' not in text
    assert '### atomic_write_text' in text and 'Write `text` to `path` atomically.' in text
    assert 'blob/main/ppma/core.py#L' in text                          # the source link
    assert '## ppma data' in text and '## Metrics (2)' in text        # ids the table of contents can reach


def test_the_cli_page_lists_every_command():
    page = load('build').cli_reference()
    for cmd in ('ppma train', 'ppma evaluate', 'ppma remove-humans', 'ppma data resize', 'ppma synth'):
        assert f'## {cmd}' in page, cmd


def test_broken_links_and_anchors_are_found(tmp_path):
    check = load('check')
    (tmp_path / 'a.html').write_text('<h2 id="top">A</h2><a href="b.html#there">ok</a><a href="b.html#gone">anchor</a>'
                                     '<a href="c.html">file</a><a href="#top">self</a><a href="https://x.org/y">web</a>')
    (tmp_path / 'b.html').write_text('<p id="there">B</p><a href="/a.html">root</a>')
    assert sorted(map(str, (l for _, l in check.broken_links(tmp_path)))) == ['b.html#gone', 'c.html']


def test_a_notebook_that_raises_fails_the_build_and_slow_cells_are_not_run(tmp_path):
    import pytest
    from nbclient.exceptions import CellExecutionError
    build = load('build')
    ok, bad = tmp_path / 'ok.ipynb', tmp_path / 'bad.ipynb'
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('#| slow\nraise SystemExit("ran")'),
                                                   nbformat.v4.new_code_cell('print(6 * 7)')]), ok)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 / 0')]), bad)
    done = nbformat.read(build.execute(ok, tmp_path / 'ok_out.ipynb'), as_version=4)
    assert done.cells[1].outputs[0]['text'] == '42\n' and done.cells[0].source.startswith('#| slow')
    with pytest.raises(CellExecutionError, match='ZeroDivisionError'): build.execute(bad, tmp_path / 'bad_out.ipynb')
