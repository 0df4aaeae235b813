"""Who gets the loaners and the compensation budget while a part is back-ordered (issue 9).

The service centre has ``N`` loaner cars (``K`` of them premium) and a compensation
authority of ``B`` yuan for the ``D`` days until the part arrives.  Each waiting customer
may receive at most one *package* from their tier's policy (SPEC A5, listed in
``models/allocate.toml``): a loaner of some kind, the ride-hailing income subsidy per day,
one-off compensation items — or nothing.  We choose the packages that maximise the
*risk covered*: the sum of the covered customers' totals, weighted by tier.

This is a multiple-choice knapsack with three resource constraints (premium cars,
regular cars, money), solved exactly as an integer program with
:func:`scipy.optimize.milp` (HiGHS, ``mip_rel_gap = 0``), never greedily: greedy-by-score is
wrong as soon as a big customer crowds out two slightly smaller ones that together weigh
more, or takes the car that a later customer could not do without.

Formulation.  Costs depend only on the package, applicability only on (tier, needs a car,
ride-hailing); so the customers of a tier with the same applicable packages are
interchangeable except for their score.  The integers are "how many of this class get
this package"; each customer has a continuous ``z`` in [0, 1], with Σz = Σcount per
class.  For integer counts the ``z`` part is integral (one equality per class: totally
unimodular), i.e. the best-scored members of the class are the ones covered, so the
optimum is exactly the one of the textbook binary customer×package program — which it
replaces because HiGHS needed 10–30 s on that one (2,000 customers, a binding budget:
thousands of interchangeable binaries to branch over) and needs ~0.05 s on this one.

"P0 first" is lexicographic, in two solves rather than with one big weight: stage 1
maximises the raw risk of the ``[objective].first`` tiers alone (then how many of them);
stage 2 maximises everyone's weighted risk subject to keeping stage 1's optimum.  A weight
"large enough" would have to exceed the whole non-P0 objective (≈10⁹ score-hundredths for
2,000 customers), and objectives of ~10¹⁵ are where a floating-point solver's tolerances
stop being exact.

Ties.  Among plans of equal coverage the solver prefers covering more customers and the
packages listed first in a tier's ``packages`` (a P0 ride-hailing driver gets the income
subsidy rather than a loaner when both are affordable).  That is a bonus whose sum over
all customers is below ½, while coverage moves in steps of ≥ 1 hundredth-point, so it
breaks ties and never costs coverage.

Money is integer yuan and scores integer hundredths, so every total here is exact.
The package is pure up to ``history`` and ``run``: ``model`` (load + validate), ``ingest``
(from the scored list), ``problem``/``solve``/``score`` (frame + model + resources in,
:class:`Allocation` out), ``result``/``report`` (the plan and its reasons), ``history``
(the plan in the store) and ``run`` (the whole run).
"""

from tierctl.allocate.ingest import _rule_reason, frame_from_scores
from tierctl.allocate.model import (
    POOLS,
    REQUIRED_COLUMNS,
    AllocateModel,
    Item,
    LoanerKind,
    Package,
    TierPolicy,
    configured_model,
    load_model,
)
from tierctl.allocate.result import Allocation, Marginal, PlanRow, Risk, Shortfall, Usage
from tierctl.allocate.score import allocate, check_resources

__all__ = [
    "POOLS",
    "REQUIRED_COLUMNS",
    "AllocateModel",
    "Allocation",
    "Item",
    "LoanerKind",
    "Marginal",
    "Package",
    "PlanRow",
    "Risk",
    "Shortfall",
    "TierPolicy",
    "_rule_reason",
    "Usage",
    "allocate",
    "check_resources",
    "configured_model",
    "frame_from_scores",
    "load_model",
]
