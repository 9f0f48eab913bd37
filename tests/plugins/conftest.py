import numpy as np
import pytest


@pytest.fixture(scope="session")
def mbv3_small():
    """A small OFA-MobileNetV3 super-network (width 0.5, 32 px) and one sampled config."""
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[32])
    return net, net.space.sample(np.random.default_rng(0))
