"""Partition SHAP: Owen values over shap's feature clustering, not Shapley values (they agree
only when the clustering does not matter); deterministic, draws nothing, and never the default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap

from eaas.explain.method import Capabilities
from eaas.explain.shapley import Estimate
from eaas.explain.source import SourceModel
from eaas.explain.tabular.estimators import Fn, cluster_masks, partition_shap
from eaas.explain.tabular.sampled import SampledMethod
from eaas.explain.validation import Params

# model rows per call in the partition recursion: shap evaluates 10 masks at a time (1,000 rows
# with 100 background rows), and sklearn's per-call cost then doubled the time; ~8k rows per call
# measured within 1.3x of the evaluation floor here
PARTITION_ROWS_PER_CALL = 8192


def partition_batch(background_rows: int) -> int:
    """Masks per model call for the partition recursion (at least shap's 10)."""
    return max(10, PARTITION_ROWS_PER_CALL // max(1, background_rows))


class PartitionMethod(SampledMethod):
    name = "partition"
    capabilities = Capabilities(
        inputs="tabular", exact=False, reentrant=True, needs_background=True
    )

    def __init__(self, source: SourceModel, background: pd.DataFrame | None) -> None:
        super().__init__(source, background)
        # shap's feature clustering; the recursion is ours, on arrays
        masker = shap.maskers.Partition(self.bg, max_samples=len(self.bg),
                                        clustering="correlation")
        self.clustering = np.asarray(masker.clustering, dtype=float)
        self.cluster_masks = cluster_masks(self.clustering, self.bg.shape[1])

    def _row(self, fn: Fn, row: np.ndarray, params: Params) -> Estimate:
        """Owen values, deterministic: no standard error (NaN), so never within a tolerance;
        they are not an estimate of the Shapley values (docs/tabular.md)."""
        fx = fn(row[None, :])[0]  # the recursion starts from f(x): a call of its own
        values = partition_shap(fn, row, self.bg, self.base, fx, params.max_evals,
                                self.clustering, self.cluster_masks,
                                partition_batch(len(self.bg)), self.rows_per_call)
        return Estimate(values, np.full_like(values, np.nan), fx, params.max_evals, False)
