from beadseg.data.split import assign_folds, grouped_split


def _groups(n_frames=10, tiles=4):
    groups, density = {}, {}
    for f in range(n_frames):
        for t in range(tiles):
            name = f"{f}_t{t}"
            groups[name] = f"frame{f}"
            density[name] = 10 * (f + 1)
    return groups, density


def test_groups_never_split_and_folds_cover_all():
    groups, density = _groups()
    fold_of = assign_folds(groups, density, 5, seed=0)
    assert set(fold_of.values()) == set(range(5))
    seen = set()
    for k in range(5):
        s = grouped_split(groups, density, folds=5, fold=k)
        assert not {groups[n] for n in s.train} & {groups[n] for n in s.val}
        seen |= set(s.val)
    assert seen == set(groups)


def test_stratified_by_density():
    groups, density = _groups(n_frames=10)
    fold_of = assign_folds(groups, density, 2, seed=3)
    # frames are dealt in density order: each fold gets one of every pair of neighbours
    for lo in range(0, 10, 2):
        assert fold_of[f"frame{lo}"] != fold_of[f"frame{lo + 1}"]


def test_seeded():
    groups, density = _groups()
    a = grouped_split(groups, density, 0.2, seed=1)
    b = grouped_split(groups, density, 0.2, seed=1)
    assert a.val == b.val
