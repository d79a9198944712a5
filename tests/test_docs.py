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
    assert '[source](#code-atomic_write_text)' in text and '<details id="code-atomic_write_text">' in text
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


def good_site(tmp_path):
    "A tiny site a reader would accept: a module page with an output and a figure, a table, a real image."
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'0' * 20)
    (tmp_path / '01_data.html').write_text('<div class="jp-OutputArea-output">42</div><img src="images/a.png">'
                                           '<table><tr><th>top-1</th><td>51.7</td></tr></table>')
    (tmp_path / 'figure_titles.json').write_text('{"01_data.html": ["Top-1 by recipe", "finance"]}')
    return tmp_path


def test_the_check_fails_on_what_a_reader_would_see(tmp_path):
    "A planted broken image, an empty module page and a 'nan' title each fail `make docs-check`; the good site passes."
    check = load('check')
    site = good_site(tmp_path)
    assert check.reader_problems(site) == []
    (site / 'index.html').write_text('<img src="images/gone.png"><img src="data:image/png;base64,">')
    (site / '02_masking.html').write_text('<p>only prose</p>')
    (site / 'figure_titles.json').write_text('{"report.html": ["No results for mae_with_humans yet", "std nan"]}')
    (site / '03_models.html').write_text('<img src="images/a.png"><table><tr><td>nan</td></tr></table>')
    problems = [(str(p), what) for p, what in check.reader_problems(site)]
    assert ('index.html', 'image does not load: images/gone.png') in problems
    assert ('index.html', 'image does not load: data:image/png;base64,') in problems
    assert ('02_masking.html', 'a module page without any output or figure') in problems
    assert ('report.html', "figure title 'No results for mae_with_humans yet'") in problems
    assert ('report.html', "figure title 'std nan'") in problems
    assert ('03_models.html', "table cell 'nan'") in problems
    assert len(problems) == 6


def test_the_build_reads_figure_titles_and_hides_echo_false_code(tmp_path):
    build = load('build')
    nb = tmp_path / 'fig.ipynb'
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.title("std nan"); plt.show()'),
        nbformat.v4.new_code_cell('#| echo: false\nprint("shown")')]), nb)
    done = nbformat.read(build.execute(nb, tmp_path / 'out.ipynb'), as_version=4)
    assert 'std nan' in done.metadata['figure_text']
    assert all('image/svg+xml' not in o.get('data', {}) for c in done.cells for o in c.outputs)
    page = build.present(done, 'https://github.com/x/y')
    assert 'hide-input' in page.cells[-1].metadata['tags'] and page.cells[-1].outputs[0]['text'] == 'shown\n'


def test_signatures_read_as_written():
    "Type hints show as in the source (the modules use `from __future__ import annotations`), not as quoted strings."
    from ppma.settings import Settings
    sig = load('build').signature(Settings)
    assert "stage: str = 'mae'" in sig and "device: str | None = None" in sig and "'str'" not in sig
