"""tierctl: morning triage for car service centres.

The package is a library first: every job (shortage tiers, churn, RFM, grading,
allocation) is a pure function over a pandas frame and a model loaded from a data
file.  The command line in :mod:`tierctl.cli` is a thin layer over it.
"""

__version__ = "0.1.0"
