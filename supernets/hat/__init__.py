"""HAT SuperTransformers (machine translation) in plain PyTorch.

* :class:`HATSpace` — HAT's design spaces ("space0" WMT, "space1" IWSLT) and
  :func:`hat_features`, the 10 averaged features of HAT's latency datasets.
* :class:`SuperTransformer` — the weight-sharing super-network (a switchnas ``SuperNet``).
* :class:`HATTask` — sandwich training and BLEU / validation-loss scoring.
* :class:`ToyTranslation`, :class:`ParallelText` — data.
* :func:`measure_hat_latency`, :func:`measure_switch_time` — HAT's latency protocol and
  Dynamic-HAT switch times.
"""

from .data import ParallelText, ToyTranslation, TranslationData
from .decoding import beam_search, greedy_decode
from .latency import HATWorkload, measure_hat_latency, measure_switch_time
from .space import HAT_FEATURE_NAMES, HATSpace, hat_features
from .supernet import SubTransformer, SuperTransformer
from .training import HATTask, bleu, translate

__all__ = [
    "HAT_FEATURE_NAMES",
    "HATSpace",
    "HATTask",
    "HATWorkload",
    "ParallelText",
    "SubTransformer",
    "SuperTransformer",
    "ToyTranslation",
    "TranslationData",
    "beam_search",
    "bleu",
    "greedy_decode",
    "hat_features",
    "measure_hat_latency",
    "measure_switch_time",
    "translate",
]
