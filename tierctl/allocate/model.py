"""The allocation model (``kind = "allocate"``, ``tierctl/models/allocate.toml``): the
tiers' packages, loaner kinds, compensation items, rules and solver settings, loaded and
validated (every problem a :class:`ModelError` naming the key)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierctl.models.loader import Section

#: Columns :func:`allocate` reads from the scored frame (``wait_days``, ``_row`` and
#: ``ride_hailing_reason`` are optional).
REQUIRED_COLUMNS = ("customer_id", "name", "tier", "score", "I", "ride_hailing")
POOLS = ("premium", "regular")


# =========================================================================================
# The model (rules as data)
# =========================================================================================


@dataclass(frozen=True)
class LoanerKind:
    """A kind of loaner car; ``pool`` says which cars it takes (premium or regular)."""

    key: str
    name: str
    name_en: str
    pool: str
    cost_per_day: int


@dataclass(frozen=True)
class Item:
    """A one-off compensation item (supercharging credit, extended warranty …)."""

    key: str
    name: str
    name_en: str
    cost: int


@dataclass(frozen=True)
class Package:
    """One option of a tier's compensation menu: ≤1 loaner, the subsidy or not, items."""

    key: str
    name: str
    name_en: str
    loaner: str | None
    subsidy: bool
    items: tuple[str, ...]


@dataclass(frozen=True)
class TierPolicy:
    """A tier's objective weight and its packages, most preferred first."""

    key: str
    label: str
    weight: int
    packages: tuple[str, ...]
    no_package_note: str


@dataclass(frozen=True)
class AllocateModel:
    """A validated ``kind = "allocate"`` model file."""

    name: str
    title: str
    path: Path
    tiers: dict[str, TierPolicy]
    packages: dict[str, Package]
    items: dict[str, Item]
    loaners: dict[str, LoanerKind]
    subsidy_name: str
    subsidy_name_en: str
    subsidy_per_day: int
    need_impact: int
    loaner_only_if_needed: bool
    subsidy_only_ride_hailing: bool
    mobility_if_needed: bool
    first: tuple[str, ...]
    days_to_eta: int
    score_decimals: int
    time_limit_s: float
    marginal_loaners: int
    marginal_budget: int

    @classmethod
    def from_section(cls, sec: Section) -> AllocateModel:
        """Build and validate the model; every problem raises :class:`ModelError` naming the key."""
        _only(sec, {"kind", "name", "title", "title_en", "defaults", "objective", "solver",
                    "marginal", "rules", "subsidy", "loaners", "items", "packages", "tiers"})
        defaults = sec.section("defaults", {})
        _only(defaults, {"days_to_eta", "score_decimals"})
        objective = sec.section("objective", {})
        _only(objective, {"first"})
        solver = sec.section("solver", {})
        _only(solver, {"time_limit_s"})
        marginal = sec.section("marginal", {})
        _only(marginal, {"loaners", "budget"})
        rules = sec.section("rules")
        _only(rules, {"need_impact", "loaner_only_if_needed", "subsidy_only_ride_hailing",
                      "mobility_if_needed"})
        subsidy = sec.section("subsidy")
        _only(subsidy, {"name", "name_en", "per_day"})

        loaners: dict[str, LoanerKind] = {}
        for key, s in _subsections(sec, "loaners"):
            _only(s, {"name", "name_en", "pool", "cost_per_day"})
            loaners[key] = LoanerKind(key, s.str("name"), s.str("name_en", key),
                                      s.choice("pool", POOLS), s.int("cost_per_day", min=0))
        items: dict[str, Item] = {}
        for key, s in _subsections(sec, "items"):
            _only(s, {"name", "name_en", "cost"})
            items[key] = Item(key, s.str("name"), s.str("name_en", key), s.int("cost", min=0))
        packages = _load_packages(sec, loaners, items)
        tiers = _load_tiers(sec, packages)
        if not tiers:
            raise sec.error("tiers", "至少要定义一个级别（[tiers.P0] …）")
        first = tuple(objective.list("first", [], of=str))
        for i, t in enumerate(first):
            if t not in tiers:
                raise objective.error(f"first[{i}]", f"没有名为「{t}」的级别",
                                      hint=f"可用：{', '.join(tiers)}")
        return cls(
            name=sec.str("name", sec.path.stem),
            title=sec.str("title", sec.str("name", sec.path.stem)),
            path=sec.path,
            tiers=tiers,
            packages=packages,
            items=items,
            loaners=loaners,
            subsidy_name=subsidy.str("name"),
            subsidy_name_en=subsidy.str("name_en", "Income subsidy"),
            subsidy_per_day=subsidy.int("per_day", min=0),
            need_impact=rules.int("need_impact", min=0),
            loaner_only_if_needed=rules.bool("loaner_only_if_needed"),
            subsidy_only_ride_hailing=rules.bool("subsidy_only_ride_hailing"),
            mobility_if_needed=rules.bool("mobility_if_needed"),
            first=first,
            days_to_eta=defaults.int("days_to_eta", 21, min=0, max=3650),
            score_decimals=defaults.int("score_decimals", 2, min=0, max=4),
            time_limit_s=float(solver.number("time_limit_s", 30, min=0.1)),
            marginal_loaners=marginal.int("loaners", 1, min=1),
            marginal_budget=marginal.int("budget", 5000, min=1),
        )

    # -- costs ----------------------------------------------------------------------------
    def package_cost(self, key: str, days: int) -> int:
        """Total cost of a package in yuan over ``days`` days (exact integer)."""
        p = self.packages[key]
        cost = sum(self.items[i].cost for i in p.items)
        if p.loaner is not None:
            cost += self.loaners[p.loaner].cost_per_day * days
        if p.subsidy:
            cost += self.subsidy_per_day * days
        return cost

    def cost_lines(self, key: str, days: int) -> list[str]:
        """The cost of a package spelled out, one short Chinese line per component."""
        p = self.packages[key]
        lines = []
        if p.loaner is not None:
            lk = self.loaners[p.loaner]
            lines.append(f"{lk.name} {lk.cost_per_day:,} 元/天 × {days} 天 = "
                         f"{lk.cost_per_day * days:,} 元")
        if p.subsidy:
            lines.append(f"{self.subsidy_name} {self.subsidy_per_day:,} 元/天 × {days} 天 = "
                         f"{self.subsidy_per_day * days:,} 元")
        for i in p.items:
            it = self.items[i]
            lines.append(f"{it.name} {it.cost:,} 元" if it.cost else f"{it.name}（不计费）")
        return lines


def load_model(name_or_path: str | Path = "allocate") -> AllocateModel:
    """Load a packaged allocation model by name, or a user's copy by path."""
    return AllocateModel.from_section(Section.load(name_or_path, kind="allocate"))


def _load_packages(sec: Section, loaners: dict[str, LoanerKind], items: dict[str, Item]) -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for key, s in _subsections(sec, "packages"):
        _only(s, {"name", "name_en", "loaner", "subsidy", "items"})
        loaner = s.str("loaner", "none")
        if loaner != "none" and loaner not in loaners:
            raise s.error("loaner", f"没有名为「{loaner}」的代步车种类",
                          hint=f"可用：none, {', '.join(loaners)}（在 [loaners.*] 中定义）")
        its = tuple(s.list("items", [], of=str))
        for i, it in enumerate(its):
            if it not in items:
                raise s.error(f"items[{i}]", f"没有名为「{it}」的补偿项目",
                              hint=f"可用：{', '.join(items)}（在 [items.*] 中定义）")
        if len(set(its)) != len(its):
            raise s.error("items", "同一个补偿项目写了两次")
        packages[key] = Package(key, s.str("name"), s.str("name_en", key),
                                None if loaner == "none" else loaner,
                                s.bool("subsidy", False), its)
    return packages


def _load_tiers(sec: Section, packages: dict[str, Package]) -> dict[str, TierPolicy]:
    tiers: dict[str, TierPolicy] = {}
    for key, s in _subsections(sec, "tiers"):
        _only(s, {"label", "weight", "packages", "no_package_note"})
        pkgs = tuple(s.list("packages", of=str))
        for i, p in enumerate(pkgs):
            if p not in packages:
                raise s.error(f"packages[{i}]", f"没有名为「{p}」的方案",
                              hint=f"可用：{', '.join(packages)}（在 [packages.*] 中定义）")
        if len(set(pkgs)) != len(pkgs):
            raise s.error("packages", "同一个方案写了两次")
        tiers[key] = TierPolicy(key, s.str("label", key), s.int("weight", min=0, max=10**6),
                                pkgs, s.str("no_package_note", f"{key} 政策没有可给的方案"))
    return tiers


def configured_model(config: Any) -> str | None:
    """``allocate.model`` from the configuration: a packaged name, or a path relative to
    the configuration file (a manager's copy of allocate.toml with the centre's prices)."""
    v = config.get("allocate.model") or ""
    if not v:
        return None
    p = Path(str(v)).expanduser()
    if (p.suffix == ".toml" or "/" in str(v)) and not p.is_absolute() and config.path is not None:
        p = Path(config.path).parent / p
        return str(p)
    return str(v)


def _only(sec: Section, allowed: set[str]) -> None:
    # A typo such as ``cost_per_dya`` would otherwise silently fall back to a default.
    for k in sec.keys():
        if k not in allowed:
            raise sec.error(k, "不认识的设置项", hint=f"可用：{', '.join(sorted(allowed))}；检查拼写")


def _subsections(sec: Section, name: str) -> list[tuple[str, Section]]:
    table = sec.section(name, {})
    return [(k, table.section(k)) for k in table.keys()]
