"""Build the documentation site offline: execute the notebooks, turn export cells into API entries, render with mkdocs.

    python nbs/_mkdocs/build.py              # the whole site into _docs/site (what `make docs` runs)
    python nbs/_mkdocs/build.py --fast       # index, one module notebook and the CLI page (what CI runs)

The committed notebooks stay clean: executed, processed copies go to _docs/src, the site to _docs/site. A notebook
that raises fails the build. Cells flagged `#| slow` are shown, not run."""
import argparse, ast, concurrent.futures as cf, copy, html, inspect, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NBS, HERE = ROOT/'nbs', Path(__file__).resolve().parent
SRC, SITE = ROOT/'_docs'/'src', ROOT/'_docs'/'site'
RUN_NOTEBOOKS = {'train_mae': 'Train one stage: MAE', 'train': 'Train one stage: linear probe', 'report': 'Report',
                 'benchmark': 'Benchmark'}                       # page: title, in the sidebar's order
DIRECTIVE = re.compile(r'^#\|\s*([\w-]+):?(.*)$')        # `#| slow`, `#| echo: false`


def directives(cell):
    "`{name: argument}` of the `#| name argument` lines at the top of a cell."
    out = {}
    for line in cell.source.splitlines():
        m = DIRECTIVE.match(line.strip())
        if not m: break
        out[m.group(1)] = m.group(2).strip()
    return out


def strip_directives(src):
    lines = src.splitlines()
    while lines and DIRECTIVE.match(lines[0].strip()): lines.pop(0)
    return '\n'.join(lines).strip('\n')


def module_of(nb):
    "The module a notebook exports to (`#| default_exp`), or None."
    for c in nb.cells:
        if c.cell_type == 'code' and 'default_exp' in directives(c): return 'ppma.' + directives(c)['default_exp']
    return None


# each figure also as SVG with its text as text, so the check can read titles (the page keeps the PNG)
FIGURE_TEXT = ("import matplotlib\nmatplotlib.rcParams['svg.fonttype'] = 'none'\n"
               "get_ipython().run_line_magic('config', \"InlineBackend.figure_formats = ['png', 'svg']\")")


def figure_text(svg):
    "The text elements of an SVG figure (titles, labels, legends), tags stripped."
    svg = ''.join(svg) if isinstance(svg, list) else svg
    texts = (re.sub(r'<[^>]+>', '', t) for t in re.findall(r'<text\b[^>]*>(.*?)</text>', svg, re.S))
    return [html.unescape(t).strip() for t in texts if t.strip()]


def execute(path, out, timeout=600):
    "Run a module notebook (slow cells shown, not run) in `nbs/`; raises on an error. Writes the executed copy."
    nb = nbformat.read(path, as_version=4)
    runnable = copy.deepcopy(nb)
    for c in runnable.cells:
        d = directives(c) if c.cell_type == 'code' else {}
        if 'slow' in d or d.get('eval') == 'false':
            c.source = ''
    runnable.cells.insert(0, nbformat.v4.new_code_cell(FIGURE_TEXT))
    NotebookClient(runnable, timeout=timeout, kernel_name='python3',
                   resources={'metadata': {'path': str(NBS)}}).execute()
    texts = []
    for c, r in zip(nb.cells, runnable.cells[1:]):
        if c.cell_type != 'code': continue
        c.outputs, c.execution_count = r.get('outputs', []), r.get('execution_count')
        for o in c.outputs:
            svg = o.get('data', {}).pop('image/svg+xml', None)       # read for its text, shown as PNG
            if svg: texts += figure_text(svg)
    nb.metadata['figure_text'] = texts
    nbformat.write(nb, out)
    return out


def public_names(src):
    "Names a code cell defines at top level, in order (functions, classes, constants; private ones left out)."
    try: tree = ast.parse(strip_directives(src))
    except SyntaxError: return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef): names.append(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            patched = any(getattr(d, 'id', None) == 'patch' for d in node.decorator_list)
            cls = getattr(node.args.args[0].annotation, 'id', None) if patched and node.args.args else None
            names.append(f'{cls}.{node.name}' if cls else node.name)     # fastcore's @patch: a method of `cls`
    return [n for n in names if not n.split('.')[-1].startswith('_') or n.endswith('__init__')]


class Hint(str):
    "An annotation kept as text (`from __future__ import annotations`), shown without its quotes."
    def __repr__(self): return str(self)


def signature(obj):
    "`obj`'s signature as it reads in the source: `size: int = 64`, not `size: 'int' = 64`."
    s = inspect.signature(obj)
    plain = lambda a: Hint(a) if isinstance(a, str) else a
    params = [p.replace(annotation=plain(p.annotation)) for p in s.parameters.values()]
    return str(s.replace(parameters=params, return_annotation=plain(s.return_annotation)))


def api_entry(module, name, anchor):
    "Markdown of one API entry: heading, signature, docstring, a link to its code folded on the same page."
    import importlib
    obj = importlib.import_module(module)
    for part in name.split('.'): obj = getattr(obj, part)
    try: sig = signature(obj)
    except (TypeError, ValueError): sig = ''
    kind = 'class' if inspect.isclass(obj) else 'def'
    doc = inspect.getdoc(obj) or ''
    try: where = f' (`ppma/{module.split(".")[-1]}.py`, line {inspect.getsourcelines(obj)[1]})'
    except (OSError, TypeError): where = ''
    return (f'### {name}\n\n```python\n{kind} {name}{sig}\n```\n\n'
            f'{doc}\n\n<small>[source](#{anchor}){where} · `from {module} import {name}`</small>\n')


def present(nb, git_url):
    "A notebook as readers see it: no hidden cells or directives, export cells as API entries with their code folded."
    module, cells = module_of(nb), []
    for c in nb.cells:
        d = directives(c) if c.cell_type == 'code' else {}
        if 'default_exp' in d or 'hide' in d: continue
        if d.get('echo') == 'false':                                 # its output without its code
            c.metadata.setdefault('tags', []).append('hide-input')
        if c.cell_type == 'markdown':
            hidden = ('- skip_exec: true', '- skip_showdoc: true')
            c.source = '\n'.join(l for l in c.source.splitlines() if l.strip() not in hidden)
            c.source = re.sub(r'^((?:> .*\n?)+)',
                              lambda m: '*' + ' '.join(l[2:].strip() for l in m.group(1).splitlines()) + '*\n',
                              c.source, count=1, flags=re.M)                  # the subtitle, one or more `> ` lines
            # links to the guides and pages the notebook names as .md files: the site's pages are .html
            c.source = re.sub(r'(?<=\])\(([^):#]+)\.md(#[^)]*)?\)', lambda m: f'({m.group(1)}.html{m.group(2) or ""})',
                              c.source)
            # a heading's id must read the same in the page and in its table of contents: no code spans in headings
            c.source = re.sub(r'^(#+ .*)$', lambda m: m.group(1).replace('`', ''), c.source, flags=re.M)
            cells.append(c)
            continue
        if 'export' in d and module:
            names = public_names(c.source)
            anchor = f'code-{names[0] if names else len(cells)}'.lower()
            entries = [api_entry(module, n, anchor) for n in names]
            code = strip_directives(c.source)
            if not entries and all(l.startswith(('import ', 'from ', 'log = ',
                                                 '#')) or not l.strip() or l.startswith(' ')
                                   for l in code.splitlines()): continue      # the imports: nothing a reader calls
            fold = f'<details id="{anchor}"><summary>code</summary>\n\n```python\n{code}\n```\n\n</details>\n'
            body = '\n'.join(entries) + '\n' + fold
            cells.append(nbformat.v4.new_markdown_cell(body))
            continue
        c.source = strip_directives(c.source) if c.source else ''
        c.outputs = [o for o in c.get('outputs', []) if o.get('name') != 'stderr']     # warnings and progress bars
        if c.source.strip() or c.outputs: cells.append(c)
    nb.cells = unique_headings(cells)
    return nb


def unique_headings(cells):
    """Headings made unique within a page (cells are rendered one by one, so the page could repeat an id its contents
    link); attr_list ids (`{#id}`) are not applied inside notebook cells, so the words change."""
    seen = {}
    def fix(m):
        slug = re.sub(r'[^\w]+', '-', m.group(2).lower()).strip('-')
        seen[slug] = seen.get(slug, 0) + 1
        return m.group(0) if seen[slug] == 1 else f'{m.group(1)} {m.group(2)} ({seen[slug]})'
    for c in cells:
        if c.cell_type == 'markdown': c.source = re.sub(r'^(#+) (.*)$', fix, c.source, flags=re.M)
    return cells


def run_notebook(name, out, params):
    "A run notebook executed by papermill with small parameters, as a reader's example."
    cmd = [str(Path(sys.executable).parent/'papermill'), str(NBS/f'{name}.ipynb'), str(out), '-k', 'python3',
           '--log-level', 'WARNING']
    for k, v in params.items(): cmd += ['-y', json.dumps({k: v})]
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, 'TQDM_DISABLE': '1'})
    return out


def cli_reference():
    "The CLI page: every command's help, from the argument parser itself."
    import argparse as ap
    from ppma.cli import parser
    p = parser()
    parts = ['# Command line\n', '*Generated from `ppma.cli.parser()`; the same text as `ppma COMMAND --help`.*\n',
             '```text\n' + p.format_help() + '```\n']
    def walk(prs, prefix):
        for a in prs._actions:
            if isinstance(a, ap._SubParsersAction):
                for name, sub in a.choices.items():
                    parts.append(f'## ppma {prefix}{name}\n\n```text\n{sub.format_help()}```\n')
                    walk(sub, f'{prefix}{name} ')
    walk(p, '')
    return '\n'.join(parts)


def title_of(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.startswith('# '): return c.source.splitlines()[0][2:].strip()
    return path.stem


GUIDES = ('install', 'data', 'models', 'training', 'human_removal', 'evaluation', 'paper', 'reliability', 'speed',
          'development')


def guide_order(path): return GUIDES.index(path.stem) if path.stem in GUIDES else len(GUIDES)


def md_title(path): return path.read_text().splitlines()[0].lstrip('# ').strip()


def write_config(pages, fast):
    "mkdocs.yml: the sidebar in the module map's order, Material with offline search."
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT/'settings.ini')
    nav = [{'Home': 'index.ipynb'}]
    modules = [p for p in pages if p.stem[:2].isdigit()]
    if modules: nav.append({'Modules': [{f'{title_of(NBS/p.name)}': p.name} for p in modules]})
    runs = sorted((p for p in pages if p.stem in RUN_NOTEBOOKS), key=lambda p: list(RUN_NOTEBOOKS).index(p.stem))
    if runs: nav.append({'Run notebooks': [{RUN_NOTEBOOKS[p.stem]: p.name} for p in runs]})
    nav.append({'Command line': 'cli.md'})
    if (SRC/'miniature.md').exists(): nav.insert(1, {'The miniature: results': 'miniature.md'})
    guides = [{md_title(p): f'guides/{p.name}'} for p in sorted((SRC/'guides').glob('*.md'), key=guide_order)]
    if guides: nav.insert(2, {'Guides': guides})
    conf = {
        'site_name': 'ppma', 'site_description': cfg['DEFAULT']['description'], 'docs_dir': str(SRC),
        'site_dir': str(SITE),
        'repo_url': cfg['DEFAULT']['git_url'], 'use_directory_urls': False, 'strict': False, 'nav': nav,
        'theme': {'name': 'material',
                  'features': ['navigation.sections', 'toc.follow', 'search.highlight', 'content.code.copy'],
                  'palette': {'primary': 'indigo'}},
        'extra_css': ['extra.css'],
        'markdown_extensions': ['admonition', 'attr_list', 'md_in_html', 'tables', 'toc',
                                {'pymdownx.highlight': {}}, 'pymdownx.superfences', 'pymdownx.details'],
        'plugins': ['search', 'offline',
                    {'mkdocs-jupyter': {'execute': False, 'include_source': False, 'ignore_h1_titles': True,
                                                             'remove_tag_config': {'remove_input_tags': ['hide-input']},
                                                             'markdown_cell_processor': 'mkdocs'}}],
    }
    import yaml
    (ROOT/'_docs'/'mkdocs.yml').write_text(yaml.safe_dump(conf, sort_keys=False))
    return ROOT/'_docs'/'mkdocs.yml'


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--fast', action='store_true', help='index, 00_core and the CLI page only')
    a.add_argument('--workers', type=int, default=2)
    a = a.parse_args(argv)
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT/'settings.ini')
    git_url = cfg['DEFAULT']['git_url']
    t0 = time.time()
    os.environ['TQDM_DISABLE'] = '1'                 # kernels inherit it: no progress bars on the pages
    shutil.rmtree(SRC, ignore_errors=True)
    SRC.mkdir(parents=True)
    names = ['index', '00_core'] if a.fast else ['index'] + sorted(p.stem for p in NBS.glob('[0-9][0-9]*.ipynb'))
    with cf.ProcessPoolExecutor(a.workers) as pool:       # each notebook in its own kernel; an error stops the build
        done = list(pool.map(execute, [NBS/f'{n}.ipynb' for n in names], [SRC/f'{n}.ipynb' for n in names]))
    print(f'executed {len(done)} notebooks in {time.time() - t0:.0f} s', flush=True)
    if not a.fast:
        tmp = Path('_docs')/'runs'                  # relative to the repository (papermill's cwd): no build paths shown
        shutil.rmtree(ROOT/tmp, ignore_errors=True)
        run_notebook('train', SRC/'train_mae.ipynb', {'stage': 'mae', 'data': 'embedded', 'epochs': 3,
                                                      'out_dir': str(tmp/'mae')})
        run_notebook('train', SRC/'train.ipynb', {'stage': 'linear_probe', 'data': 'embedded',
                                                  'init': str(tmp/'mae'/'checkpoint.pt'),
                                                  'epochs': 20, 'out_dir': str(tmp/'linear_probe')})
        run_notebook('report', SRC/'report.ipynb', {'runs_dir': str(tmp), 'out_dir': str(tmp/'report')})
        shutil.copy(NBS/'benchmark.ipynb', SRC/'benchmark.ipynb')       # the whole benchmark (20 minutes) is not run
        print(f'run notebooks done at {time.time() - t0:.0f} s', flush=True)
    pages = []
    titles = {}
    for p in sorted(SRC.glob('*.ipynb')):
        nb = nbformat.read(p, as_version=4)
        titles[p.with_suffix('.html').name] = nb.metadata.pop('figure_text', [])
        nb = present(nb, git_url)
        nbformat.write(nb, p)
        pages.append(p)
    (SRC/'cli.md').write_text(cli_reference())
    shutil.copy(NBS/'miniature.md', SRC/'miniature.md')      # the measured tables, linked from the README
    shutil.copytree(NBS/'guides', SRC/'guides')              # the README's guides
    shutil.copy(Path(__file__).with_name('extra.css'), SRC/'extra.css')
    for png in (NBS/'images').glob('miniature_*.png'): shutil.copy(png, SRC/png.name)
    shutil.copytree(NBS/'images', SRC/'images')                # the home page's pictures
    conf = write_config([p for p in pages if p.stem != 'index'], a.fast)
    subprocess.run([str(Path(sys.executable).parent/'mkdocs'), 'build', '-q', '-f', str(conf)], check=True, cwd=ROOT)
    (SITE/'figure_titles.json').write_text(json.dumps(titles, indent=1))   # read by check.py
    print(f'site in {SITE} ({time.time() - t0:.0f} s); open {SITE/"index.html"}')


if __name__ == '__main__': main()
