"""The run notebooks tell the story: train.ipynb's figures show what metrics.jsonl holds, the saved notebook is not
flooded by progress bars, results rows name the papermill command, and every parameter has a type and a help line."""
import ast, json, os, re, shlex, subprocess, sys
from pathlib import Path

import pytest

from ppma.core import read_jsonl
from ppma.evaluate import load_results

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = [sys.executable, '-m', 'papermill']


def papermill(nb, out, *args):
    "Run a notebook as CI does, without a TQDM_MININTERVAL from outside (the notebook's own default is under test)."
    env = {k: v for k, v in os.environ.items() if k != 'TQDM_MININTERVAL'}
    r = subprocess.run([*PAPERMILL, str(ROOT / nb), str(out), '-k', 'python3', '--log-level', 'WARNING', *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert 'unknown parameter' not in r.stderr.lower(), r.stderr[-2000:]
    return json.loads(Path(out).read_text())


@pytest.fixture(scope='module')
def runs(toy, tmp_path_factory):
    "A one-epoch MAE and a linear probe from it, each run through nbs/train.ipynb with tiny settings on the toy card."
    d = tmp_path_factory.mktemp('train_nb')
    settings = ['-p', 'workers', '0', '-p', 'batch_size', '6', '-y', 'settings: ' + json.dumps({k: v for k, v in TINY.items() if k != 'workers'})]
    mae = papermill('nbs/train.ipynb', d / 'mae.ipynb', '-p', 'stage', 'mae', '-p', 'epochs', '1', '-p', 'data', str(toy),
                    '-p', 'out_dir', str(d / 'mae'), *settings)
    lp = papermill('nbs/train.ipynb', d / 'lp.ipynb', '-p', 'stage', 'linear_probe', '-p', 'init', str(d / 'mae' / 'checkpoint.pt'),
                   '-p', 'epochs', '3', '-p', 'data', str(toy), '-p', 'out_dir', str(d / 'lp'), *settings)
    return d, {'mae': mae, 'lp': lp}


def outputs(nb, snippet):
    "The outputs of the one code cell whose source contains `snippet`."
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code' and snippet in ''.join(c['source'])]
    assert len(cells) == 1, snippet
    return cells[0]['outputs']


def pngs(nb, snippet): return sum('image/png' in o.get('data', {}) for o in outputs(nb, snippet))


def per_epoch(out):
    recs = read_jsonl(out / 'metrics.jsonl')
    return [r for r in recs if r['split'] == 'train_epoch'], [r for r in recs if r['split'] == 'val']


@pytest.mark.parametrize('name', ['mae', 'lp'])
def test_the_curves_plot_every_per_epoch_record(runs, name):
    d, _ = runs
    ep, val = per_epoch(d / name)
    pts = json.loads((d / name / 'curves.json').read_text())
    assert pts['loss']['train'] == [[r['epoch'] + 1, r['loss']] for r in ep]
    assert pts['learning rate']['train'] == [[r['epoch'] + 1, r['lr']] for r in ep]
    if name == 'mae':                     # one epoch, no labels: no top-1 panel; the held-out loss beside predicting the mean
        assert len(ep) == 1 and len(val) == 1 and set(pts) == {'loss', 'learning rate'}
        assert set(pts['loss']) == {'train', 'val', 'predicting the mean'}
        assert pts['loss']['val'] == [[1, val[0]['loss']]] and pts['loss']['predicting the mean'][0][1] == val[0]['baseline']
    else:                                                      # a cached probe: train_epoch records, then one val record
        assert len(ep) == 3 and len(val) == 1
        assert pts['loss']['val'] == [[r['epoch'] + 1, r['loss']] for r in val]
        for line, recs in (('train', ep), ('val', val)):
            xy = pts['top-1 (%)'][line]
            assert [x for x, _ in xy] == [r['epoch'] + 1 for r in recs] and [y for _, y in xy] == pytest.approx([100 * r['acc1'] for r in recs])
    assert (d / name / 'curves.png').stat().st_size > 5000


def test_the_notebook_shows_curves_reconstruction_and_confusion(runs):
    d, nbs = runs
    mae, lp = nbs['mae'], nbs['lp']
    assert pngs(mae, 'plot_run(') == 1 and pngs(lp, 'plot_run(') == 1
    assert pngs(mae, "glob('reconstructions/*.png')") == 1 and pngs(lp, "glob('reconstructions/*.png')") == 0
    assert pngs(lp, 'plot_confusion(') == 1 and pngs(mae, 'plot_confusion(') == 0
    assert 'no evaluation' in json.dumps(outputs(mae, 'plot_confusion('))      # the absence is said, not left blank
    table = ''.join(outputs(lp, 'pd.DataFrame([run_summary(')[0]['data']['text/html'])
    for word in ('linear_probe', 'epochs', 'last train loss', 'val top-1 (%)', str(d / 'lp' / 'checkpoint.pt')): assert word in table
    for word in ('val videos', 'chance (%)', '95% interval (%)', 'train videos'): assert word in table   # issue 26
    started = json.dumps(outputs(mae, 'started from') + outputs(lp, 'started from'))
    assert 'RANDOM WEIGHTS' in started and str(d / 'mae' / 'checkpoint.pt') in started      # MAE from scratch, LP from it


def test_progress_bars_do_not_flood_the_saved_notebook(runs):
    "Each bar is drawn at its start and at its end only: one MAE epoch is two drawings, not one per batch."
    _, nbs = runs
    for nb in nbs.values():
        draws = [t for c in nb['cells'] for o in c.get('outputs', []) if o['output_type'] == 'stream'
                 for t in re.split(r'[\r\n]', ''.join(o['text'])) if re.search(r'\d+%\|', t)]
        ends = [t for t in draws if '100%|' in t]
        assert ends and len(draws) <= 2 * len(ends), draws
        assert 'IProgress' not in json.dumps([c.get('outputs', []) for c in nb['cells']])
    bars = [t for c in nbs['mae']['cells'] for o in c.get('outputs', []) if o['output_type'] == 'stream' for t in [''.join(o['text'])] if 'mae epoch' in t]
    assert len(bars) == 2, bars


def test_results_rows_record_the_papermill_command(runs):
    d, _ = runs
    row = load_results(d).iloc[-1]
    cmd = shlex.split(row.command)
    assert cmd[:2] == ['papermill', 'nbs/train.ipynb'] and 'ipykernel' not in row.command
    args, yaml, i = {}, [], 2
    while i < len(cmd):
        assert cmd[i] in ('-p', '-y'), cmd
        if cmd[i] == '-p': args[cmd[i + 1]] = cmd[i + 2]; i += 3
        else: yaml.append(cmd[i + 1]); i += 2
    assert args == {'stage': 'linear_probe', 'data': args['data'], 'init': str(d / 'mae' / 'checkpoint.pt'), 'epochs': '3',
                    'out_dir': str(d / 'lp'), 'workers': '0', 'batch_size': '6'}
    assert len(yaml) == 1 and yaml[0].startswith('settings: ') and json.loads(yaml[0][len('settings: '):]) == {k: v for k, v in TINY.items() if k != 'workers'}


def parameters(nb):
    src = next(''.join(c['source']) for c in json.loads((ROOT / nb).read_text())['cells'] if 'parameters' in c['metadata'].get('tags', []))
    return [n.target.id for n in ast.parse(src).body if isinstance(n, ast.AnnAssign)], src


@pytest.mark.parametrize('nb', ['nbs/train.ipynb', 'nbs/report.ipynb', 'nbs/benchmark.ipynb'])
def test_help_notebook_gives_a_type_and_help_for_every_parameter(nb):
    names, src = parameters(nb)
    assert len(names) == len([l for l in src.splitlines() if l.strip()]), 'every parameter is annotated, one per line'
    r = subprocess.run([*PAPERMILL, '--help-notebook', nb], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'Unable to parse' not in r.stdout + r.stderr, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for name in names:
        i = next(i for i, l in enumerate(lines) if l.startswith(f'  {name}: '))
        m = re.match(rf'  {name}: (.+?) \(default .*?\)(.*)$', lines[i])
        text = m.group(2).strip() or lines[i + 1].strip()
        assert m.group(1) != 'Unknown type' and text and not text.startswith(tuple(f'{n}:' for n in names)), (name, lines[i:i + 2])


def test_each_stage_defaults_to_the_miniature_set_it_learns_on(monkeypatch):
    "Issue 26: with only `-p stage`, the notebook trains on the miniature's set for the stage, where make demo makes it."
    import ppma.miniature as mini
    made = []
    monkeypatch.setattr(mini, 'world_set', lambda name, root, scale, **kw: made.append((name, root, scale)) or name)
    assert [mini.stage_data(s) for s in ('mae', 'align', 'finetune', 'linear_probe')] == \
        ['real', 'synthetic', 'downstream', 'downstream']
    assert {r for _, r, _ in made} == {ROOT / 'runs' / 'benchmark' / 'data'} and {s for *_, s in made} == {'demo'}


def test_align_in_the_notebook_shows_chance_interval_confusion_and_its_start(tmp_path):
    """Issue 26, at smoke size: Align on the miniature's synthetic source set, through nbs/train.ipynb: the summary
    gives chance, the 95% interval and the held-out videos, the confusion matrix is drawn, a line says the run
    started from random weights, and each epoch's bar is drawn at its start and end only."""
    from ppma.miniature import stage_data
    card = stage_data('align', 'smoke', root=tmp_path / 'data', workers=1, progress=False)
    nb = papermill('nbs/train.ipynb', tmp_path / 'align.ipynb', '-p', 'stage', 'align', '-p', 'data', str(card),
                   '-p', 'epochs', '2', '-p', 'workers', '0', '-p', 'out_dir', str(tmp_path / 'align'))
    table = ''.join(outputs(nb, 'pd.DataFrame([run_summary(')[0]['data']['text/html'])
    for word in ('val videos', 'chance (%)', '12.5', '95% interval (%)', 'train videos'): assert word in table, word
    assert pngs(nb, 'plot_confusion(') == 1
    assert 'RANDOM WEIGHTS' in json.dumps(outputs(nb, 'started from'))
    bars = [t for c in nb['cells'] for o in c.get('outputs', []) if o['output_type'] == 'stream'
            for t in re.split(r'[\r\n]', ''.join(o['text'])) if re.search(r'align epoch \d+: +\d+%\|', t)]
    assert 0 < len(bars) <= 4, bars                  # two epochs: at most a start and an end drawing each
