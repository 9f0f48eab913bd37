"""A bundle's ``io`` section: classify an image, translate a sentence, with the bundle
alone; vocabularies checksummed; older bundles still load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import switchnas.runtime as rt
from switchnas.runtime import BundleError
from switchnas.runtime._manifest import sha256_file

ROOT = Path(__file__).resolve().parents[2]


# -- an OFA image classifier on digits -------------------------------------------------------
@pytest.fixture(scope="session")
def digits() -> Any:
    from switchnas.supernets.ofa.data import DigitsData

    return DigitsData()


@pytest.fixture(scope="session")
def image_bundle(tmp_path_factory: pytest.TempPathFactory, family: Any, digits: Any) -> Path:
    net, members = family
    io = rt.image_classification_io(mean=digits.mean, std=digits.std,
                                    labels=digits.class_names)
    return rt.write_bundle(tmp_path_factory.mktemp("io") / "img", supernet=net,
                           members=members, io=io)


def _raw_test_digit(digits: Any) -> np.ndarray:
    """The first test image of the pipeline's digits data as the raw 8x8 image (0-16):
    found among scikit-learn's images by the documented normalisation (z-score over the
    whole set), independently of the mean/std the data records."""
    from sklearn.datasets import load_digits

    raw = load_digits().images
    x = torch.tensor(raw, dtype=torch.float32)
    z = (x - x.mean()) / (x.std() + 1e-8)
    want = digits.images["test"][0, 0]
    j = int(((z - want).abs().flatten(1).max(1).values).argmin())
    assert torch.allclose(z[j], want, atol=1e-6)
    return np.asarray(raw[j])


def test_manifest_io_section(image_bundle: Path, family: Any) -> None:
    _, members = family
    m = json.loads((image_bundle / "manifest.json").read_text())
    assert m["format_version"] == rt.FORMAT_VERSION == 3
    io = m["io"]
    assert io["task"] == "image_classification" and io["channel_order"] == "RGB"
    assert io["labels"] == [str(i) for i in range(10)]
    for mem in members:  # the resolution is the member's r
        r = mem["config"]["r"]
        assert io["input_shapes"][mem["id"]] == [3, r, r]


@pytest.mark.parametrize("switch", ["extracted", "inplace"])
def test_classify_matches_the_pipeline_path(image_bundle: Path, family: Any, digits: Any,
                                            switch: str) -> None:
    net, members = family
    image = (_raw_test_digit(digits) / 16.0).astype(np.float32)  # HxW in [0, 1]
    bundle = rt.load(image_bundle, switch=switch)
    for mem in members:
        r = mem["config"]["r"]
        x, _ = next(digits.batches("test", batch_size=1, resolution=r))  # the pipeline's input
        net.load_bn_state(mem["bn_state"])
        with torch.no_grad():
            probs = torch.softmax(net.extract(mem["config"]).eval()(x).double(), 1)[0]
        bundle.activate(mem["id"])
        pre = bundle.preprocess(image)
        assert pre.shape == (1, 3, r, r)
        assert torch.allclose(pre, x, atol=1e-5)
        label, prob = bundle.classify(image)
        assert label == str(int(probs.argmax()))
        assert prob == pytest.approx(float(probs.max()), abs=1e-5)
        assert bundle.postprocess(bundle(pre)) == [(label, pytest.approx(prob))]


def test_classify_input_forms(image_bundle: Path, digits: Any) -> None:
    bundle = rt.load(image_bundle)
    u8 = np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8)
    want = bundle.classify(u8.astype(np.float32) / 255.0)
    assert bundle.classify(u8) == want  # uint8 is divided by 255
    assert bundle.classify(torch.from_numpy(u8).permute(2, 0, 1)) == want  # CxHxW tensor
    gray = u8[..., 0]
    assert bundle.classify(gray) == bundle.classify(np.repeat(gray[..., None], 3, axis=2))
    with pytest.raises(ValueError, match="dtype int32 is not allowed"):
        bundle.classify(u8.astype(np.int32))
    with pytest.raises(ValueError, match="2 channels"):
        bundle.classify(u8[..., :2])
    with pytest.raises(ValueError, match="numpy array"):
        bundle.classify([[0, 1]])
    with pytest.raises(BundleError, match="not translation"):
        bundle.translate("the cat")


@pytest.mark.slow  # a fresh interpreter importing torch and ofa
def test_classify_with_only_the_runtime_imported(image_bundle: Path, digits: Any,
                                                 tmp_path: Path) -> None:
    """A device's code path: ``import switchnas.runtime`` and a digits image; nothing of
    the pipeline, search or predictors is imported, and every distribution that loading
    imports is covered by the ``device`` install extra."""
    image = (_raw_test_digit(digits) / 16.0 * 255).round().astype(np.uint8)
    np.save(tmp_path / "digit.npy", image)
    want = rt.load(image_bundle).classify(image)
    code = (
        "import json, sys, numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "import switchnas.runtime as rt\n"
        f"b = rt.load({str(image_bundle)!r})\n"
        f"label, prob = b.classify(np.load({str(tmp_path / 'digit.npy')!r}))\n"
        "print(json.dumps({'label': label, 'prob': prob, 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["label"], got["prob"]) == (want[0], pytest.approx(want[1], abs=1e-6))
    ours = {m for m in got["modules"] if m.startswith("switchnas.")}
    assert not {m for m in ours if m.split(".")[1] in ("pipeline", "search", "predictors",
                                                        "plugins")}, sorted(ours)
    assert _distributions(got["modules"]) <= _device_closure() | _OPTIONAL, (
        sorted(_distributions(got["modules"]) - _device_closure()))


#: imported when installed, needed only elsewhere (tqdm: colorama on Windows)
_OPTIONAL = {"colorama"}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _distributions(modules: list[str]) -> set[str]:
    import importlib.metadata as md

    owners = md.packages_distributions()
    return {_norm(d) for m in modules for d in owners.get(m.split(".")[0], [])
            if _norm(d) != "switchnas"}


def _device_closure() -> set[str]:
    """The ``device`` extra's requirements and everything they require (this platform)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["device"]
    todo = [Requirement(r) for r in extra]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in md.requires(req.name) or []]
        except md.PackageNotFoundError:
            continue
    return seen


# -- a HAT translation bundle ---------------------------------------------------------------
@pytest.fixture(scope="session")
def toy() -> Any:
    from switchnas.supernets.hat.data import ToyTranslation

    return ToyTranslation(src_vocab=32, tgt_vocab=36, n_train=16, n_valid=4, n_test=4)


@pytest.fixture(scope="session")
def hat_family(toy: Any) -> tuple[Any, list[dict[str, Any]]]:
    from switchnas.supernets.hat.supernet import SuperTransformer

    torch.manual_seed(0)
    net = SuperTransformer(src_vocab=toy.src_vocab, tgt_vocab=toy.tgt_vocab, width_divisor=16,
                           max_positions=64).eval()
    rng = np.random.default_rng(0)
    members = [{"id": f"h{i}", "config": net.space.sample(rng), "accuracy": 0.1 * i,
                "latency_ms": 1.0 + i} for i in range(2)]
    return net, members


@pytest.fixture(scope="session")
def hat_bundle(tmp_path_factory: pytest.TempPathFactory, hat_family: Any, toy: Any) -> Path:
    net, members = hat_family
    io = rt.translation_io(src_vocab=toy.src_dict.itos, tgt_vocab=toy.tgt_dict.itos, beam=3)
    return rt.write_bundle(tmp_path_factory.mktemp("io") / "hat", supernet=net,
                           members=members, io=io)


def test_hat_manifest_lists_the_vocabularies(hat_bundle: Path, toy: Any) -> None:
    m = json.loads((hat_bundle / "manifest.json").read_text())
    tok = m["io"]["tokenizer"]
    assert tok["kind"] == "words" and (tok["src_size"], tok["tgt_size"]) == (32, 36)
    for side, vocab in (("src_vocab", toy.src_dict), ("tgt_vocab", toy.tgt_dict)):
        f = hat_bundle / tok[side]
        assert f.read_text().splitlines() == vocab.itos
        assert m["files"][tok[side]]["sha256"] == sha256_file(f)
    assert m["io"]["specials"] == {"pad": 0, "bos": 1, "eos": 2, "unk": 3}
    assert m["io"]["decoding"]["beam"] == 3 and m["io"]["decoding"]["max_positions"] == 64


@pytest.mark.parametrize("switch", ["lean", "extracted", "inplace"])
def test_translate_equals_the_pipeline_decoding(hat_bundle: Path, hat_family: Any, toy: Any,
                                                switch: str) -> None:
    from switchnas.supernets.hat.training import translate

    net, members = hat_family
    bundle = rt.load(hat_bundle, switch=switch)
    n = len(toy.split("test"))
    sources = [toy.src_dict.decode(s) for s, _ in toy.split("test")]
    nonempty = 0
    for mem in members:
        bundle.activate(mem["id"])
        net.activate(mem["config"])
        for beam in (3, 1):
            want = translate(net, toy, "test", beam=beam, limit=n, batch_size=1)
            got = [bundle.translate(s, beam=None if beam == 3 else beam) for s in sources]
            assert got == want
            nonempty += sum(bool(w) for w in want)
    assert nonempty  # the check compares words, not only empty strings


def test_translate_pre_and_postprocess(hat_bundle: Path, toy: Any) -> None:
    bundle = rt.load(hat_bundle)
    src, tgt = toy.split("test")[0]
    x = bundle.preprocess(toy.src_dict.decode(src))
    assert x.tolist() == [src + [2]]  # tokens, then EOS
    assert bundle.postprocess(tgt + [2, 5, 6]) == toy.tgt_dict.decode(tgt)  # stops at EOS
    assert bundle.preprocess("the nosuchword")[0, 1].item() == 3  # unknown: <unk>
    with pytest.raises(ValueError, match="at most 63"):
        bundle.translate("the " * 80)
    with pytest.raises(ValueError, match="beam=0"):
        bundle.translate("the", beam=0)
    with pytest.raises(BundleError, match="not image_classification"):
        bundle.classify(np.zeros((8, 8), np.uint8))


def test_hat_bundle_needs_nothing_but_the_runtime(hat_bundle: Path) -> None:
    from switchnas.runtime._io import TranslationIO, WordTokenizer

    bundle = rt.load(hat_bundle)
    assert isinstance(bundle.io, TranslationIO) and isinstance(bundle.io.src, WordTokenizer)


# -- integrity and older bundles ------------------------------------------------------------
def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "copy"))


def _edit_manifest(path: Path, fn: Any) -> None:
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_tampered_vocabulary_is_refused(hat_bundle: Path, tmp_path: Path) -> None:
    p = _copy(hat_bundle, tmp_path)
    f = p / "vocab-tgt.txt"
    data = f.read_bytes()
    i = data.index(b"w1")
    f.write_bytes(data[:i] + b"w7" + data[i + 2:])  # same size, another word map
    assert len(f.read_bytes()) == len(data)
    with pytest.raises(BundleError, match="vocab-tgt.txt.*SHA-256"):
        rt.load(p)


def test_vocabulary_checked_even_with_a_matching_checksum(hat_bundle: Path,
                                                          tmp_path: Path) -> None:
    """A manifest rewritten to match an edited vocabulary still meets the parser."""
    p = _copy(hat_bundle, tmp_path)
    f = p / "vocab-src.txt"
    words = f.read_text().splitlines()
    f.write_text("\n".join(words[:-1] + [words[5]]) + "\n")  # a repeated token
    _edit_manifest(p, lambda m: m["files"]["vocab-src.txt"].update(
        sha256=sha256_file(f), bytes=f.stat().st_size))
    with pytest.raises(BundleError, match="repeated"):
        rt.load(p)
    f.write_text("\n".join(words[:-1]) + "\n")  # one token short of the embedding
    _edit_manifest(p, lambda m: m["files"]["vocab-src.txt"].update(
        sha256=sha256_file(f), bytes=f.stat().st_size))
    with pytest.raises(BundleError, match="31 tokens, the manifest says 32"):
        rt.load(p)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda m: m["io"]["tokenizer"].update(src_vocab="nope.txt"), "not in 'files'"),
    (lambda m: m["io"]["decoding"].update(beam=0), r"io.decoding.beam"),
    (lambda m: m["io"]["specials"].update(eos=5), "specials"),
    (lambda m: m["io"].update(task="speech"), "io.task"),
    (lambda m: m.update(format_version=2), "needs format version 3"),
])
def test_bad_io_section_is_refused(hat_bundle: Path, tmp_path: Path, edit: Any,
                                   match: str) -> None:
    p = _copy(hat_bundle, tmp_path)
    _edit_manifest(p, edit)
    with pytest.raises(BundleError, match=match):
        rt.load(p)


def test_bad_image_io_is_refused(image_bundle: Path, tmp_path: Path) -> None:
    p = _copy(image_bundle, tmp_path)
    _edit_manifest(p, lambda m: m["io"].update(std=[0.1, 0.0, 0.1]))
    with pytest.raises(BundleError, match=r"io.std must be 3 positive"):
        rt.load(p)
    _edit_manifest(p, lambda m: m["io"].update(std=[0.1] * 3, input_shapes={}))
    with pytest.raises(BundleError, match="one shape per member"):
        rt.load(p)
    with pytest.raises(ValueError, match="channel_order must be one of"):
        rt.image_classification_io(mean=[0.5], std=[0.2], channel_order="CMYK")
    with pytest.raises(ValueError, match="either src_vocab and tgt_vocab"):
        rt.translation_io(src_vocab=["<pad>"])


def test_old_format_bundle_loads_and_says_io_is_missing(bundle_dir: Path,
                                                        tmp_path: Path) -> None:
    """A version-2 bundle (no io section) loads and runs; classify says what is missing."""
    p = _copy(bundle_dir, tmp_path)
    _edit_manifest(p, lambda m: m.update(format_version=2))
    bundle = rt.load(p)
    assert bundle.io is None and bundle.manifest["format_version"] == 2
    assert bundle(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(BundleError, match=r"no 'io' section \(format version 2, or written "
                       r"without write_bundle\(io=\.\.\.\)\), so it does not say what input its "
                       r"members take\. Re-export it with this switchnas \(switchnas export\)"):
        bundle.classify(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BundleError, match="no 'io' section"):
        bundle.preprocess(np.zeros((8, 8, 3), np.uint8))
