import math

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from imbalanced.longtail.weights import ClassWeightError, class_counts, compute_class_weights

COUNTS = np.array([500, 120, 40, 9])


def labels_from(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_balanced_equals_scikit_learn():
    y = labels_from(COUNTS)
    expected = compute_class_weight("balanced", classes=np.arange(len(COUNTS)), y=y)
    np.testing.assert_allclose(compute_class_weights(class_counts(y, 4), "balanced"), expected)


def test_effective_number_follows_cui_et_al():
    beta = 0.99
    raw = np.array([(1 - beta) / (1 - beta**n) for n in COUNTS])
    expected = raw / raw.sum() * len(COUNTS)
    np.testing.assert_allclose(compute_class_weights(COUNTS, "effective_number", beta=beta), expected)


def test_effective_number_limits():
    # beta=0: every class has effective number 1 -> uniform; beta->1 approaches inverse frequency
    np.testing.assert_allclose(compute_class_weights(COUNTS, "effective_number", beta=0.0), 1.0)
    near_one = compute_class_weights(COUNTS, "effective_number", beta=1 - 1e-9)
    np.testing.assert_allclose(near_one, compute_class_weights(COUNTS, "inverse"), rtol=1e-5)


def test_inverse_strategies_sum_to_num_classes():
    inverse = compute_class_weights(COUNTS, "inverse")
    inverse_sqrt = compute_class_weights(COUNTS, "inverse_sqrt")
    assert inverse.sum() == pytest.approx(4) and inverse_sqrt.sum() == pytest.approx(4)
    assert inverse[3] / inverse[0] == pytest.approx(500 / 9)
    assert inverse_sqrt[3] / inverse_sqrt[0] == pytest.approx(math.sqrt(500 / 9))


def test_none_is_uniform_and_manual_is_used_as_given():
    np.testing.assert_array_equal(compute_class_weights(COUNTS, "none"), np.ones(4))
    np.testing.assert_array_equal(
        compute_class_weights(COUNTS, "manual", weights=[1, 2, 3, 4.5]), [1, 2, 3, 4.5]
    )


def test_class_missing_from_training_split_is_named():
    with pytest.raises(ClassWeightError, match=r"\['cat'\] have 0 training samples"):
        compute_class_weights([10, 0], "balanced", class_names=["dog", "cat"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "inverse_square"}, "strategy='inverse_square' is unknown; valid: none, balanced"),
        ({"strategy": "effective_number", "beta": 1.0}, r"beta=1.0 is outside \[0, 1\)"),
        ({"strategy": "effective_number", "beta": -0.1}, r"beta=-0.1 is outside \[0, 1\)"),
        ({"strategy": "manual", "weights": [1, 2]}, "has 2 values but the data has 4 classes"),
        ({"strategy": "manual", "weights": [1, -2, 1, 1]}, "negative or non-finite"),
        ({"strategy": "manual", "weights": [1, float("nan"), 1, 1]}, "negative or non-finite"),
        ({"strategy": "manual", "weights": None}, "needs a list"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ClassWeightError, match=message):
        compute_class_weights(COUNTS, **kwargs)


def test_counts_come_from_labels():
    np.testing.assert_array_equal(class_counts(np.array([0, 2, 2, 2]), 4), [1, 0, 3, 0])


def test_config_form_equals_the_named_form():
    config = {"_target_": "imbalanced.longtail.weights.effective_number", "beta": 0.99}
    np.testing.assert_array_equal(
        compute_class_weights(COUNTS, config), compute_class_weights(COUNTS, "effective_number", beta=0.99)
    )
    partial = {"_target_": "imbalanced.longtail.weights.balanced", "_partial_": True}
    np.testing.assert_array_equal(compute_class_weights(COUNTS, partial), compute_class_weights(COUNTS))


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (lambda counts: np.full(len(counts), np.nan), r"gave weights \[nan, nan, nan, nan\] for 4 classes"),
        (lambda counts: np.ones(2), "gave weights .* for 4 classes; allowed: one finite weight >= 0"),
        (lambda counts: np.zeros(len(counts)), "at least one > 0"),
    ],
)
def test_what_any_strategy_returns_is_checked(strategy, message):
    with pytest.raises(ClassWeightError, match=message):
        compute_class_weights(COUNTS, strategy)


def test_a_strategys_empty_class_is_named_with_the_class_name():
    config = {"_target_": "imbalanced.longtail.weights.inverse_sqrt", "_partial_": True}
    with pytest.raises(ClassWeightError, match=r"class_weights=inverse_sqrt needs every class .*\['cat'\]"):
        compute_class_weights([10, 0], config, class_names=["dog", "cat"])


# ---- how a class_weights config is read (resolve_strategy / compute_class_weights) ----------------
def test_a_target_outside_the_built_ins_is_instantiated_from_a_dictconfig():
    """A fork's strategy is any `_target_`: it is built by Hydra, also from an OmegaConf node."""
    from omegaconf import OmegaConf

    config = OmegaConf.create({"_target_": "numpy.sqrt", "_partial_": True})
    np.testing.assert_allclose(compute_class_weights([4, 9, 16], config), [2.0, 3.0, 4.0])


def test_a_target_that_cannot_be_built_names_the_strategy_and_its_settings():
    with pytest.raises(ClassWeightError, match=r"^class_weights=sqrt cannot be built from \{'bogus': 1\}: "):
        compute_class_weights([4, 9], {"_target_": "numpy.sqrt", "bogus": 1})


def test_a_target_that_builds_no_callable_is_refused():
    with pytest.raises(
        ClassWeightError,
        match=r"^class_weights._target_=builtins.dict gives dict, not a callable counts -> "
        r"weights \(a function needs `_partial_: true`",
    ):
        compute_class_weights([4, 9], {"_target_": "builtins.dict"})


def test_a_named_strategy_takes_its_settings_from_the_config_and_the_call():
    from_config = compute_class_weights(COUNTS, {"strategy": "effective_number", "beta": 0.5})
    from_call = compute_class_weights(COUNTS, "effective_number", beta=0.5)
    np.testing.assert_allclose(from_config, from_call)
    assert not np.allclose(from_config, compute_class_weights(COUNTS, "effective_number"))
    with pytest.raises(
        ClassWeightError, match=r"^class_weights=balanced takes no settings; got \{'beta': 0.5\}$"
    ):
        compute_class_weights(COUNTS, {"strategy": "balanced", "beta": 0.5})
    with pytest.raises(
        ClassWeightError, match=r"^class_weights.strategy='bogus' is unknown; valid: none, balanced, "
    ):
        compute_class_weights(COUNTS, {"strategy": "bogus"})


def test_an_empty_class_is_named_by_index_without_class_names_and_by_the_callables_name():
    from imbalanced.longtail.weights import inverse

    with pytest.raises(
        ClassWeightError,
        match=r"^class_weights=inverse needs every class in the training "
        r"split, but class\(es\) \['1'\] have 0 training samples",
    ):
        compute_class_weights([3, 0, 2], inverse)
    with pytest.raises(ClassWeightError, match=r"class\(es\) \['cat'\] have 0"):
        compute_class_weights([3, 0], "inverse", class_names=["dog", "cat"])


@pytest.mark.parametrize("bad", [[1.0], [1.0, float("nan")], [1.0, -0.5], [0.0, 0.0]])
def test_a_strategy_must_give_one_finite_non_negative_weight_per_class(bad):
    with pytest.raises(
        ClassWeightError,
        match=r"^class_weights=<lambda> gave weights .* for 2 classes; allowed: "
        r"one finite weight >= 0 per class, at least one > 0$",
    ):
        compute_class_weights([5, 5], lambda counts: np.array(bad))
    one_zero = compute_class_weights([5, 5], lambda counts: np.array([0.0, 2.0]))
    np.testing.assert_array_equal(one_zero, [0.0, 2.0])


def test_the_empty_class_message_gives_the_whole_advice_and_names_a_nameless_callable():
    import functools

    from imbalanced.longtail.weights import inverse

    message = (
        r"^class_weights=custom needs every class in the training split, but class\(es\) \['1'\] have "
        r"0 training samples. Add samples of these classes to the training data, or use "
        r"class_weights=none or class_weights=manual.$"
    )
    with pytest.raises(ClassWeightError, match=message):
        compute_class_weights([3, 0], functools.partial(inverse))  # a partial has no __name__


def test_invalid_weights_are_shown_with_their_decimals():
    with pytest.raises(ClassWeightError, match=r"gave weights \[1.0, -0.25\] for 2 classes"):
        compute_class_weights([5, 5], lambda counts: np.array([1.0, -0.25]))


def test_an_unknown_strategy_points_to_the_config_group():
    with pytest.raises(
        ClassWeightError,
        match=r"is unknown; valid: .*effective_number.* "
        r"\(or a `_target_` in configs/class_weights/\)$",
    ):
        compute_class_weights(COUNTS, "bogus")


def test_a_strategy_that_cannot_be_built_gives_pythons_own_reason():
    with pytest.raises(ClassWeightError) as error:
        compute_class_weights(
            COUNTS, {"_target_": "imbalanced.longtail.weights.effective_number", "betta": 0.9}
        )
    message = str(error.value)  # Python's own TypeError text, not Hydra's wrapper around it
    assert message.startswith("class_weights=effective_number cannot be built from {'betta': 0.9}: ")
    assert message.endswith("() got an unexpected keyword argument 'betta'") and "\n" not in message


def test_invalid_weights_are_rounded_to_six_decimals():
    with pytest.raises(ClassWeightError, match=r"gave weights \[1.0, -0.123457\] for 2 classes"):
        compute_class_weights([5, 5], lambda counts: np.array([1.0, -0.1234567]))


def test_a_config_nodes_interpolated_settings_are_resolved():
    """`class_weights.beta: ${...}` in a composed config: the weights and class_weights.json use the value."""
    from omegaconf import OmegaConf

    from imbalanced.longtail.weights import strategy_name, strategy_settings

    cfg = OmegaConf.create(
        {
            "beta": 0.5,
            "class_weights": {"_target_": "imbalanced.longtail.weights.effective_number", "beta": "${beta}"},
        }
    )
    assert strategy_settings(cfg.class_weights) == {"beta": 0.5}
    assert strategy_name(cfg.class_weights) == "effective_number"
    np.testing.assert_allclose(
        compute_class_weights(COUNTS, cfg.class_weights),
        compute_class_weights(COUNTS, "effective_number", beta=0.5),
    )
