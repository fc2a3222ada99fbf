"""Every example runs as documented (examples are docs, and docs must not rot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Run elsewhere, once, with more assertions (each is a subprocess of tens of seconds).
TESTED_ELSEWHERE = {"lora_minilm.py": "tests/integrations/test_lora_example.py"}
EXAMPLES = sorted(
    p
    for p in (Path(__file__).parents[1] / "examples").glob("*.py")
    if p.name not in TESTED_ELSEWHERE
)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
