"""A model whose libraries are not installed is one sentence naming the extra that installs them."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from modelperf.models import registry
from modelperf.models.base import ModelUnavailable


@pytest.mark.parametrize(("model", "module"), [("distilbert", "torch"), ("distilbert", "transformers"),
                                               ("llama", "llama_cpp")])
def test_a_missing_library_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, model: str,
                                                      module: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == module else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelUnavailable) as raised:
        registry.load_model(model, {})
    message = str(raised.value)
    assert f"pip install 'pytest-modelperf[{model}]'" in message and module in message
    assert "\n" not in message and message.endswith(".")


def test_installed_libraries_are_not_reported_missing() -> None:
    for model, modules in registry.EXTRAS.items():
        if all(importlib.util.find_spec(m) is not None for m in modules):
            assert registry.missing_extra(model) is None
