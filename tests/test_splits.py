"The project's copy of the PPMA split lists and the data cards that describe them."
from collections import Counter

import pytest

from ppma.data import read_split
from ppma.cards import card_classes, card_split, load_card

# rows and classes present per shipped list, counted from the published lists (../shared/splits/ppma/README.md)
EXPECTED = {
    'ucf101': ({'train': 9537, 'val': 3783}, 101, 101),
    'hmdb51': ({'train': 3570, 'val': 1530}, 51, 51),
    'diving48': ({'train': 15027, 'val': 1970}, 48, 47),
    'ikea_fa': ({'train': 1781, 'val': 163}, 12, 12),
    'uav_human': ({'train': 16285, 'val': 6191}, 155, 155),
    'mini_ssv2': ({'train': None, 'val': 11799}, 87, 87),
    'kinetics150': ({'train': None, 'val': 7423}, 150, 150),
    'nohuman_kinetics150': ({'train': None, 'val': 7423}, 150, 150),
    'synthetic150': ({'train': None, 'val': 12547}, 150, 150),
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_rows_and_classes(name):
    counts, declared, present = EXPECTED[name]
    card = load_card(name)
    assert card['name'] == name and card['num_classes'] == declared and card['classes_present'] == present
    labels = set()
    for which, n in counts.items():
        if n is None:
            assert card['splits'][which] is None
            with pytest.raises(FileNotFoundError, match='--split'):
                card_split(card, which)
            continue
        rows = read_split(card_split(card, which))
        assert len(rows) == n == card['counts'][which]
        labels |= {l for _, l in rows}
        assert max(l for _, l in rows) < declared
    assert len(labels) == present


def test_diving48_label_30_never_occurs():
    labels = Counter(l for w in ('train', 'val') for _, l in read_split(card_split('diving48', w)))
    assert 30 not in labels and len(labels) == 47 and max(labels) == 47


def test_semicolons_inside_hmdb51_paths():
    rows = read_split(card_split('hmdb51', 'train'))
    odd = [r for r, _ in rows if ';' in r]
    assert len(odd) == 7
    assert ('laugh/Der_Lachsack___Laughing_Bag___keep_on_smiling_;0)_laugh_h_cm_np1_fr_med_0', 25) in rows


def test_spaces_inside_kinetics_paths():
    rows = read_split(card_split('kinetics150', 'val'))
    assert rows[0] == ('val/peeling apples/erjpP2MAlOQ_000001_000011.mp4', 0)


@pytest.mark.parametrize('name,part', [('ucf101', 0), ('hmdb51', 0), ('kinetics150', 1), ('ikea_fa', 2)])
def test_class_names_come_from_the_lists(name, part):
    names = card_classes(name)
    for which in ('train', 'val'):
        card = load_card(name)
        if card['splits'][which] is None:
            continue
        for path, label in read_split(card_split(card, which)):
            assert path.split('/')[part] == names[label]


def test_cards_without_names_say_null_and_synthetic_shares_kinetics_names():
    for name in ('diving48', 'uav_human', 'mini_ssv2'):
        assert card_classes(name) is None
    assert card_classes('synthetic150') == card_classes('kinetics150') == card_classes('nohuman_kinetics150')
    assert {load_card(n)['label_space'] for n in ('kinetics150', 'nohuman_kinetics150', 'synthetic150')} == {'kinetics150'}
    assert load_card('synthetic150')['real_humans'] is False and load_card('ucf101')['real_humans'] is True


def test_no_train_val_overlap():
    for name, (counts, _, _) in EXPECTED.items():
        if counts['train']:
            tr = {r for r, _ in read_split(card_split(name, 'train'))}
            va = {r for r, _ in read_split(card_split(name, 'val'))}
            assert not tr & va, name
