"""Routing of every category × district pair to a department."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from civic.categories import CATEGORIES
from civic.districts import DISTRICTS
from civic.errors import UnknownCategory, UnknownDistrict
from civic.models import Department
from civic.routing import department_for, departments, route_table, sync_departments


def test_route_table_covers_all_250_pairs() -> None:
    table = route_table()
    assert len(table) == 250
    assert set(table) == {(c, d) for c in CATEGORIES for d in DISTRICTS}
    for spec in table.values():
        assert spec.code and spec.name_ko and spec.name_en and spec.name_ja


def test_template_and_override() -> None:
    table = route_table()
    mapo = table[("illegal_parking", "마포구")]
    assert (mapo.code, mapo.name_ko, mapo.name_en, mapo.name_ja) == (
        "mapo-transport",
        "마포구청 교통행정과",
        "Mapo-gu Office Traffic Administration Division",
        "麻浦区庁 交通行政課",
    )
    assert table[("illegal_dumping", "중구")].name_ko == "중구청 청소행정과"
    assert table[("illegal_parking", "강남구")].code == "gangnam-parking"


def test_every_pair_resolves_to_a_row(session: Session) -> None:
    for (category, district), spec in route_table().items():
        assert department_for(session, category=category, district=district).code == spec.code
    count = session.execute(select(func.count()).select_from(Department)).scalar_one()
    assert count == len(departments())


def test_sync_is_idempotent_and_renames(session: Session) -> None:
    assert sync_departments(session) == 0  # the migrated database is already in sync
    row = session.execute(select(Department).where(Department.code == "mapo-transport")).scalar_one()
    row.name_en = "old name"
    assert sync_departments(session) == 1
    assert row.name_en == "Mapo-gu Office Traffic Administration Division"


def test_department_for_creates_missing_row(session: Session) -> None:
    row = session.execute(select(Department).where(Department.code == "jongno-safety")).scalar_one()
    session.delete(row)
    session.flush()
    created = department_for(session, category="safety", district="종로구")
    assert created.code == "jongno-safety" and created.id is not None


def test_department_for_validates(session: Session) -> None:
    with pytest.raises(UnknownCategory):
        department_for(session, category="graffiti", district="마포구")
    with pytest.raises(UnknownDistrict):
        department_for(session, category="noise", district="Mapo-gu")
