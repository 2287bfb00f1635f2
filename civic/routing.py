"""Routing of category × district to the department that works the case (data/routing.yml, admins' overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from civic.categories import CATEGORIES, check_category
from civic.districts import DISTRICTS, check_district, district_names
from civic.models import Department, RoutingOverride

ROUTING_FILE = Path(__file__).resolve().parent / "data" / "routing.yml"


@dataclass(frozen=True)
class DepartmentSpec:
    """A department as the routing table describes it, before it is a row."""

    code: str
    name_ko: str
    name_en: str
    name_ja: str


def _gu_slug(gu_en: str) -> str:
    return gu_en.lower().removesuffix("-gu")


def _from_template(office: dict[str, str], template: dict[str, str], gu_ko: str) -> DepartmentSpec:
    names = district_names()[gu_ko]
    fields = {"gu_ko": names.gu_ko, "gu_en": names.gu_en, "gu_ja": names.ja_kanji}
    return DepartmentSpec(
        code=f"{_gu_slug(names.gu_en)}-{template['code']}",
        name_ko=f"{office['ko'].format(**fields)} {template['ko']}",
        name_en=f"{office['en'].format(**fields)} {template['en']}",
        name_ja=f"{office['ja'].format(**fields)} {template['ja']}",
    )


def _spec(raw: dict[str, Any]) -> DepartmentSpec:
    return DepartmentSpec(code=raw["code"], name_ko=raw["ko"], name_en=raw["en"], name_ja=raw["ja"])


@cache
def route_table() -> dict[tuple[str, str], DepartmentSpec]:
    """Every (category, district) pair mapped to its department; raises if one is missing."""
    raw = yaml.safe_load(ROUTING_FILE.read_text(encoding="utf-8"))
    table = {
        (category, gu): _from_template(raw["office"], raw["templates"][category], gu)
        for category in CATEGORIES
        for gu in DISTRICTS
    }
    for override in raw.get("overrides") or []:
        key = (check_category(override["category"]), check_district(override["district"]))
        table[key] = _spec(override["department"])
    _check_codes_consistent(table)
    return table


def _check_codes_consistent(table: dict[tuple[str, str], DepartmentSpec]) -> None:
    # Two routes may share a department, but then they must describe it identically.
    by_code: dict[str, DepartmentSpec] = {}
    for spec in table.values():
        if by_code.setdefault(spec.code, spec) != spec:
            raise ValueError(f"routing.yml: department {spec.code} is named in two different ways")


_department_ids: dict[tuple[str, str], int] = {}


def departments() -> list[DepartmentSpec]:
    """Each distinct department of the routing table, sorted by code."""
    return sorted({spec.code: spec for spec in route_table().values()}.values(), key=lambda s: s.code)


def _insert_department(session: Session, spec: DepartmentSpec) -> Department:
    # Another process may insert the same code between our SELECT and INSERT: the savepoint lets us
    # lose that race and read the winner's row without spoiling the caller's transaction.
    try:
        with session.begin_nested():
            department = Department(code=spec.code, name_ko=spec.name_ko, name_en=spec.name_en, name_ja=spec.name_ja)
            session.add(department)
    except IntegrityError:
        return session.execute(select(Department).where(Department.code == spec.code)).scalar_one()
    return department


def sync_departments(session: Session) -> int:
    """Insert or rename the departments of the routing table; returns how many rows changed."""
    existing = {d.code: d for d in session.execute(select(Department)).scalars()}
    changed = 0
    for spec in departments():
        row = existing.get(spec.code)
        if row is None:
            _insert_department(session, spec)
            changed += 1
        elif (row.name_ko, row.name_en, row.name_ja) != (spec.name_ko, spec.name_en, spec.name_ja):
            row.name_ko, row.name_en, row.name_ja = spec.name_ko, spec.name_en, spec.name_ja
            changed += 1
    session.flush()
    return changed


# Read at every filing, never cached: an admin's change must hold at once in every process. One primary-key
# lookup, built once (building the select per call cost more than running it); not session.get, whose
# identity map could answer from an older read.
_OVERRIDE_LOOKUP = select(RoutingOverride.department_id).where(
    RoutingOverride.category == bindparam("category"), RoutingOverride.district == bindparam("district")
)


def override_department_id(session: Session, *, category: str, district: str) -> int | None:
    """The department an admin routed this pair to in the console (routing_overrides), if any."""
    return session.execute(_OVERRIDE_LOOKUP, {"category": category, "district": district}).scalar_one_or_none()


def department_for(session: Session, *, category: str, district: str) -> Department:
    """The department row for a case: an admin's override, else the file's, created on first use if not synced."""
    key = (check_category(category), check_district(district))
    overridden = override_department_id(session, category=key[0], district=key[1])
    if overridden is not None:
        return session.get_one(Department, overridden)
    spec = route_table()[key]
    row = session.execute(select(Department).where(Department.code == spec.code)).scalar_one_or_none()
    return row if row is not None else _insert_department(session, spec)


def department_id_for(session: Session, *, category: str, district: str) -> int:
    """department_for's id; the file's departments are remembered per database (rows are never deleted)."""
    key = (check_category(category), check_district(district))
    overridden = override_department_id(session, category=key[0], district=key[1])
    if overridden is not None:
        return overridden
    spec = route_table()[key]
    cache_key = (str(session.get_bind().engine.url), spec.code)
    if cache_key not in _department_ids:
        department = department_for(session, category=category, district=district)
        session.flush()
        _department_ids[cache_key] = department.id
    return _department_ids[cache_key]
