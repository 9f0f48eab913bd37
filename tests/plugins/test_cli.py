import json

from switchnas.plugins.cli import main, plugin_rows


def test_table_lists_every_builtin(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("cpu", "onnxruntime", "cuda", "lut", "flops"):
        assert f"\n{name} " in out
    assert "built-in" in out and "switchnas.plugins.cpu.CPUPlugin" in out


def test_json_has_describe_or_reason(capsys):
    assert main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["cpu"]["describe"]["plugin"] == "cpu"
    for r in rows:
        assert ("describe" in r) != ("error" in r)


def test_unconstructible_plugin_shows_why(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    row = next(r for r in plugin_rows() if r["name"] == "cuda")
    assert "no CUDA device" in row["error"]


def test_no_construct(capsys):
    assert main(["--no-construct"]) == 0
    assert "not constructed" in capsys.readouterr().out
