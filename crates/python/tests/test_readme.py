"""The README's Python examples run as written (in a scratch folder)."""

import re

from conftest import ROOT


def test_the_readmes_python_examples_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python"):text.index("## Tests")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's Python section has no example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "models" / "my-spiral" / "model.safetensors").exists()
