"""The README's Python example runs as written, against a copy of the bundled corpus."""

from __future__ import annotations

import re
import shutil

from conftest import CORPUS, ROOT


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys, embedder):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "2 added" in out
    assert "155" in out and "[1]" in out
