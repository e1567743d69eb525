"""Registry[T]: entries from providers loaded at the first lookup, a package standing for each of its
modules (so a new method is one new file), and errors that name the closest entries."""

from __future__ import annotations

import sys

import pytest

from unseen.core.errors import UnknownNameError
from unseen.core.registry import Registry


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A package ``things_pkg`` whose two modules (one in a subpackage) register into ``THINGS``."""
    package = tmp_path / "things_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    register = (
        "from tests_registry_target import THINGS\n"
        "@THINGS.register({name!r}, help='a {name}')\n"
        "def f(): return {name!r}\n"
    )
    (package / "alpha.py").write_text(register.format(name="alpha"))
    (package / "sub" / "beta.py").write_text(register.format(name="beta"))
    target = type(sys)("tests_registry_target")
    target.THINGS = Registry("thing", "things_pkg", fix="List them with `things`.")
    monkeypatch.setitem(sys.modules, "tests_registry_target", target)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield target.THINGS
    for name in [m for m in sys.modules if m.startswith("things_pkg")]:
        del sys.modules[name]


def test_the_first_lookup_imports_every_module_of_a_provider_package(plugin_package):
    assert "things_pkg.alpha" not in sys.modules  # nothing is imported before a lookup
    assert list(plugin_package) == ["alpha", "beta"]
    assert plugin_package["beta"]() == "beta"
    assert plugin_package.help() == {"alpha": "a alpha", "beta": "a beta"}


def test_an_unknown_name_suggests_the_closest_and_gives_the_fix(plugin_package):
    with pytest.raises(UnknownNameError) as error:
        plugin_package["alpah"]
    assert str(error.value) == (
        "unknown thing 'alpah'. Did you mean alpha? Known: alpha, beta. List them with `things`."
    )


def test_a_name_registered_twice_is_refused():
    registry = Registry("thing")
    registry.register("x")(object())
    with pytest.raises(ValueError, match="thing 'x' is registered twice"):
        registry.register("x")(object())


def test_membership_and_get_never_raise_for_unknown_names():
    registry = Registry.of("thing", {"x": 1})
    assert "x" in registry and "y" not in registry
    assert registry.get("y") is None and registry.get("x") == 1
    assert dict(registry.items()) == {"x": 1}
