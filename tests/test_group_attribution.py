"""Group-wise (holder) attribution, attribution/groups.py: a planted copy points at its
holder, score shapes, and bad groups rejected by name. Quality against LOGO retraining is
measured in benchmarks/group_attribution.py, not here."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_symbolic import tiny_corpus, tiny_model_version

from attribution.groups import GroupUnlearningAttributor, summed_instance_scores
from sandbox.gpt_adapter import SandboxGPTAdapter
from sandbox.gpt_eval import near_copy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_GROUPS = 6  # 60 works dealt round-robin: 10 works per holder


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus()


@pytest.fixture(scope="module")
def groups(corpus):
    _, ids = corpus
    return {f"holder-{g}": ids[g::N_GROUPS] for g in range(N_GROUPS)}


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, corpus):
    return SandboxGPTAdapter(tiny_model_version(tmp_path_factory.mktemp("m"), *corpus))


@pytest.fixture(scope="module")
def scored(adapter, corpus, groups):
    pieces, ids = corpus
    rng = np.random.default_rng(5)
    works = [7, 20, 45]  # holders 1, 2, 3
    copies = [near_copy(pieces[w], rng) for w in works]
    a = GroupUnlearningAttributor(adapter)
    a.cache(pieces, groups, work_ids=ids)
    return a, works, a.attribute(copies)


def test_a_planted_copy_makes_its_holder_the_top_group(scored):
    a, works, scores = scored
    assert scores.shape == (len(works), N_GROUPS)
    assert a.group_names == [f"holder-{g}" for g in range(N_GROUPS)]
    for row, w in zip(scores, works, strict=True):
        top = int(np.argmax(row))
        assert a.group_names[top] == f"holder-{w % N_GROUPS}"
        # Unlearning the holder raises the copy's loss, well above a typical other holder.
        others = np.delete(row, top)
        assert row[top] > 0 and row[top] > 2 * np.median(others)


def test_scores_follow_the_groups_order(adapter, corpus, groups):
    pieces, ids = corpus
    a = GroupUnlearningAttributor(adapter)
    reordered = dict(reversed(list(groups.items())))
    a.cache(pieces, reordered, work_ids=ids)
    b = GroupUnlearningAttributor(adapter)
    b.cache(pieces, groups, work_ids=ids)
    target = [near_copy(pieces[7], np.random.default_rng(1))]
    np.testing.assert_allclose(a.attribute(target)[:, ::-1], b.attribute(target), rtol=1e-6)


def test_summed_instance_scores_add_each_groups_columns():
    scores = np.arange(12, dtype=float).reshape(2, 6)
    out = summed_instance_scores(scores, {"a": [0, 2], "b": [5], "c": [1, 3, 4]})
    np.testing.assert_array_equal(out, [[2, 5, 8], [14, 11, 26]])


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"label-x": []}, "group 'label-x' has no works"),
        ({"label-x": ["work-000"], "label-y": ["work-999"]}, "group 'label-y': unknown work"),
        ({"label-z": "work-000"}, "group 'label-z': members must be a list"),
        ({}, "no groups"),
    ],
)
def test_bad_groups_are_a_value_error_naming_the_group(adapter, corpus, groups, message):
    pieces, ids = corpus
    with pytest.raises(ValueError, match=message):
        GroupUnlearningAttributor(adapter).cache(pieces, groups, work_ids=ids)


def test_bad_indices_name_the_group():
    with pytest.raises(ValueError, match="group 'g': unknown work 9"):
        summed_instance_scores(np.zeros((1, 3)), {"g": [0, 9]})
    with pytest.raises(ValueError, match="group 'g': work 'a' is not a training index"):
        summed_instance_scores(np.zeros((1, 3)), {"g": ["a"]})


def test_attribute_before_cache_is_an_error(adapter):
    with pytest.raises(RuntimeError, match="cache"):
        GroupUnlearningAttributor(adapter).attribute([[1, 2, 3]])
