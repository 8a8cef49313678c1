"""The Python side of the MoQ vs HLS/LL-HLS evaluation (see eval/README.md).

Analysis modules: ``stats`` (percentiles, ECDF, regression, seeded bootstrap), ``frames`` (the per-cell latency
join and frame metrics), ``summary`` (the run summary CLI: ``python3 -m evaluation.summary <run dir>`` from
eval/) and ``figures`` (matplotlib, imported only when figures are drawn). ``stats``, ``frames`` and ``summary``
use the standard library only.
"""
