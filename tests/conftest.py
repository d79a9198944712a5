"Shared test fixtures: a tiny model setting and a toy labelled video dataset with its card."
import pytest

from ppma.cards import save_card
from ppma.testing import make_dataset

TINY = dict(model='vit_tiny_cpu', size=32, num_frames=4, clip_seconds=0.6, workers=0, test_clips=1, test_crops=1)


def make_toy(root):
    "Three classes of a square moving in different directions; a card with train and val lists."
    make_dataset(root / 'train', classes=('left', 'right', 'up'), per_class=6, n=16, h=32, w=32)
    make_dataset(root / 'val', classes=('left', 'right', 'up'), per_class=2, n=16, h=32, w=32, seed=1)
    for sub in ('train', 'val'):
        (root / f'{sub}.csv').write_text(''.join(f'{sub}/{l}\n' for l in (root / sub / 'split.csv').read_text().splitlines()))
    return save_card(root / 'toy.md', {'name': 'toy', 'num_classes': 3, 'label_space': 'toy', 'splits': {'train': 'train.csv', 'val': 'val.csv'}})


@pytest.fixture(scope='session')
def toy(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy'))


