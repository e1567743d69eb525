"""Every hyperparameter value, given, fixed or drawn, is checked against its declaration."""

from __future__ import annotations

import math

import pytest

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam

LR = HParam("lr", 1e-3, grid=(1e-4, 1e-3), help="learning rate")
BATCH = HParam("batch_size", 64, help="batch size")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "inf", "nan"])
def test_a_float_hyperparameter_must_be_finite(value):
    with pytest.raises(HyperparameterError, match="'lr' must be a finite number"):
        LR.coerce(value, "method 'x'")


@pytest.mark.parametrize("value", [True, False, math.inf, math.nan, 2.5, "many"])
def test_an_integer_hyperparameter_refuses_booleans_infinities_and_fractions(value):
    with pytest.raises(HyperparameterError, match="'batch_size' must be a int like 64"):
        BATCH.coerce(value, "method 'x'")


def test_plain_numbers_are_converted_to_the_declared_type():
    assert LR.coerce(1, "m") == 1.0 and isinstance(LR.coerce(1, "m"), float)
    assert BATCH.coerce(32.0, "m") == 32 and isinstance(BATCH.coerce(32.0, "m"), int)


def test_a_drawn_value_is_checked_too():
    broken = HParam("lr", 1e-3, draw=lambda rng: math.inf)
    with pytest.raises(HyperparameterError, match="finite"):
        broken.sample(0)
