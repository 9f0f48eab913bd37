"""The shared hardware-plugin test suite (it lives in the installed package, as
``switchnas.plugins.testing``, so that separate plugin packages can subclass it too)."""

from switchnas.plugins.testing import (
    HardwarePluginTestSuite,
    RaisingModule,
    TwoInputModule,
    tiny_convnet,
)

__all__ = ["HardwarePluginTestSuite", "RaisingModule", "TwoInputModule", "tiny_convnet"]
