"Every argument of every `ppma` command, nested ones included, shows a line of help in `--help`."
import argparse
import subprocess
import sys
from pathlib import Path

from ppma.cli import parser

PPMA = str(Path(sys.executable).parent / 'ppma')


def commands(p=None, path=()):
    "`(words, parser)` of every command and subcommand."
    p = p or parser()
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items(): yield from commands(sub, (*path, name))


def test_every_argument_has_help():
    missing = [(' '.join(words), a.option_strings or a.dest) for words, p in commands() for a in p._actions
               if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert missing == []


def test_help_prints_each_argument_with_its_line():
    "What `--help` prints for each command holds each argument's line; a nested one is run as a user would."
    seen = list(commands())
    assert ('data', 'check') in [w for w, _ in seen] and len(seen) >= 14
    for words, p in seen:
        out = p.format_help()
        for a in p._actions:
            if a.help == argparse.SUPPRESS or isinstance(a, argparse._SubParsersAction): continue
            assert ' '.join(a.help.split()[:2]) in ' '.join(out.split()), (words, a.option_strings or a.dest)
    out = subprocess.run([PPMA, 'data', 'check', '--help'], capture_output=True, text=True, timeout=120).stdout
    assert 'only check that files exist' in out and "folder the card's list paths are relative to" in ' '.join(out.split())
