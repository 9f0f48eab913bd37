"""What every stage needs: the resolved config, the run directory, and lazily built
super-network, data, task and hardware plugin."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from switchnas.supernets.base import SuperNet, Task, check_protocol

from .artifacts import Artifacts

__all__ = ["Context", "ConfigError", "artifact_store", "instantiate_config"]

log = logging.getLogger("switchnas")


class ConfigError(ValueError):
    """A user-facing configuration mistake (bad name, out-of-range value ...)."""


def instantiate_config(node: Any, what: str, *, overrides: Mapping[str, Any] | None = None
                       ) -> Any:
    """Hydra-instantiate a config node (``_target_`` + arguments) of the user's config.

    Args:
        node: the config node.
        what: names the node in error messages (``"hardware"``, ``"supernet ofa_mbv3"``).
        overrides: arguments replacing the node's own.

    Returns:
        The constructed object.

    Raises:
        ConfigError: construction failed (bad argument, missing file ...), naming ``what``.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **dict(overrides or {}))
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, (ValueError, TypeError, FileNotFoundError)):
            raise ConfigError(f"{what}: {cause}") from cause
        raise ConfigError(f"{what}: {exc}") from exc


def artifact_store(cfg: DictConfig) -> Path | None:
    """The content-addressed artifact store of a run (``store`` in the config).

    ``auto`` (the default): ``<sweep dir>/.store`` in a Hydra multirun, so the jobs of a
    sweep share every artifact whose key they share (the trained super-network when only
    the hardware or the search differs), and none for a single run; ``null``: none; a
    path: that folder (e.g. one store for every run of a machine).
    """
    value = cfg.get("store", "auto")
    if value is None or value is False:
        return None
    if value == "auto":
        try:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode

            hc = HydraConfig.get()
        except ValueError:  # not inside a Hydra app
            return None
        if hc.mode != RunMode.MULTIRUN:
            return None
        return Path(hc.sweep.dir) / ".store"
    return Path(str(value)).expanduser()


def _without_progress(value: Any) -> Any:
    """Drop ``progress`` flags: showing a progress bar does not change an artifact."""
    if isinstance(value, dict):
        return {k: _without_progress(v) for k, v in value.items() if k != "progress"}
    return value


_MISSING = object()


def _command_line_keys(prefix: str) -> list[str]:
    """The dotted keys under ``prefix`` that the running Hydra app's command line set
    (``supernet.task.lr=0.05``, ``+supernet.x=1``); none outside a Hydra app."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except (ValueError, ImportError):  # not inside a Hydra app
        return []
    keys = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+")
        if "=" in text and key.startswith(prefix) and not key.startswith("~"):
            keys.append(key)
    return keys


class Context:
    """Shared state of one run. ``cfg`` is the composed Hydra config with the supernet's
    preset (``supernet.presets.<preset_name>``) merged in; a ``supernet.*`` key set on the
    command line keeps its command-line value over the preset's."""

    def __init__(self, cfg: DictConfig, run_dir: Path):
        preset = str(cfg.get("preset_name", "default"))
        sn = cfg.supernet
        if "presets" in sn and preset in sn.presets:
            merged = OmegaConf.merge(sn, sn.presets[preset])
            given = cfg
            cfg = OmegaConf.merge(cfg, {"supernet": merged})  # type: ignore[assignment]
            for key in _command_line_keys("supernet."):  # the command line beats the preset
                if not key.startswith("supernet.presets.") and \
                        OmegaConf.select(given, key, default=_MISSING) is not _MISSING:
                    OmegaConf.update(cfg, key, OmegaConf.select(given, key), merge=False)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.artifacts = Artifacts(self.run_dir, store=artifact_store(cfg))
        self.progress = bool(cfg.get("progress", True))

    def section(self, *keys: str) -> dict[str, Any]:
        """Resolved plain-dict copy of config sections (for stage keys)."""
        out: dict[str, Any] = {}
        for k in keys:
            node = OmegaConf.select(self.cfg, k)
            out[k] = _without_progress(OmegaConf.to_container(node, resolve=True)
                                       if isinstance(node, DictConfig) else node)
        return out

    @functools.cached_property
    def data(self) -> Any:
        return instantiate_config(self.cfg.data, "data")

    @functools.cached_property
    def space_override(self) -> dict[str, Any] | None:
        """The space of ``supernet.space_file`` (a reduced design space), if given."""
        path = self.cfg.supernet.get("space_file")
        if not path:
            return None
        from switchnas.search.reduce import read_space_file

        try:
            return read_space_file(str(path))
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"supernet.space_file={path!r}: {exc}") from exc

    def new_supernet(self) -> SuperNet:
        extra = {"space": self.space_override} if self.space_override else {}
        net = instantiate_config(self.cfg.supernet.net, f"supernet {self.cfg.supernet.name}",
                                 overrides=extra)
        check_protocol(net, SuperNet, "supernet")
        return net

    @functools.cached_property
    def task(self) -> Task:
        task = instantiate_config(self.cfg.supernet.task, f"supernet {self.cfg.supernet.name} task")
        check_protocol(task, Task, "task")
        return task

    @functools.cached_property
    def plugin(self) -> Any:
        from switchnas.plugins.registry import validate_plugin

        return validate_plugin(instantiate_config(self.cfg.hardware, "hardware"))

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([int(self.cfg.seed), salt])

    @functools.cached_property
    def supernet(self) -> SuperNet:
        """The super-network with the ``train`` stage's weights."""
        from safetensors.torch import load_file

        from .stages import train

        art = train.run(self)
        net = self.new_supernet()
        net.load_state_dict(load_file(str(art / "supernet.safetensors")))  # type: ignore[attr-defined]
        net.eval()  # type: ignore[attr-defined]
        return net
