"""Optional frameworks stay optional: importing traindyn never imports them."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("transformers", "lightning", "pytorch_lightning", "tensorboard", "wandb", "peft", "ray")


def test_import_traindyn_and_its_integrations_package_imports_no_framework() -> None:
    code = (
        "import sys, traindyn, traindyn.integrations, traindyn.analysis.predictions\n"
        f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_an_unknown_integration_name_is_an_attribute_error() -> None:
    import pytest

    import traindyn.integrations as integrations

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        integrations.Nope  # noqa: B018
