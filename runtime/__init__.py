"""Run exported bundles: load, switch between members, pick members under changing load.

Needs torch, numpy and safetensors, plus what the bundle's super-net imports (OFA
bundles: ``ofa``, which imports torchvision and tqdm; HAT bundles: nothing more); the
``device`` install extra lists exactly these::

    bundle = switchnas.runtime.load("bundle/")
    selector = bundle.selector(target_ms=40)
    member = selector.step(observed_ms)
    bundle.activate(member)
    label, prob = bundle.classify(image)    # an image classifier: HxWxC uint8 array
    text = bundle.translate("the cat ...")  # a translation bundle (HAT)
    y = bundle(bundle.preprocess(image))    # or the steps: raw input -> member input

A bundle names its super-net by a registered name (entry-point group
``switchnas.supernets``, or :func:`register_supernet` at run time), never by an import
path; see ``SECURITY.md`` for what :func:`load` checks and what it trusts.

Importing this package is light: the torch-based parts load on first use, so
:mod:`switchnas.runtime.onnx` runs ONNX members on a device with only onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._io import image_classification_io, translation_io
from ._manifest import FORMAT, FORMAT_VERSION, BundleError
from ._registry import available_supernets, get_supernet, register_supernet, supernet_name
from .selectors import (
    MemberInfo,
    Selector,
    available_selectors,
    get_selector,
    make_selector,
    register_selector,
)

if TYPE_CHECKING:
    from ._bundle import Bundle, Member, load, pack_bundle
    from ._writer import write_bundle

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Bundle",
    "BundleError",
    "Member",
    "MemberInfo",
    "Selector",
    "available_selectors",
    "available_supernets",
    "get_selector",
    "get_supernet",
    "image_classification_io",
    "load",
    "make_selector",
    "pack_bundle",
    "register_selector",
    "register_supernet",
    "supernet_name",
    "translation_io",
    "write_bundle",
]

_LAZY = {"Bundle": "._bundle", "Member": "._bundle", "load": "._bundle",
         "pack_bundle": "._bundle", "write_bundle": "._writer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
