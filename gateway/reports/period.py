"""The period a report covers: a calendar quarter, or any range of whole days (some provinces
report 15 June – 14 September), in the node's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.errors import InvalidRequest

EARLIEST_YEAR, LATEST_YEAR = 1970, 2999
ROMAN = ("I", "II", "III", "IV")


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first` to `last`, both included; `quarter` = (year, 1..4) when the report is a
    quarter's (its title), even if its days were given explicitly."""

    first: date
    last: date
    quarter: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise InvalidRequest(f"the period ends ({self.last}) before it starts ({self.first})")

    @classmethod
    def of_quarter(cls, year: int, quarter: int) -> Period:
        _check_year(year)
        if not 1 <= quarter <= 4:
            raise InvalidRequest(f"quarter {quarter}: use 1, 2, 3 or 4")
        first = date(year, 3 * quarter - 2, 1)
        after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return cls(first, after - timedelta(days=1), (year, quarter))

    @classmethod
    def parse(
        cls,
        year: int | None = None,
        quarter: int | None = None,
        first: str | None = None,
        last: str | None = None,
    ) -> Period:
        """What the CLI and the API take: `year` and `quarter` (a calendar quarter), or
        `first` and `last` days (YYYY-MM-DD, both included), or all four (those days, titled
        as that quarter)."""
        if (year is None) != (quarter is None):
            raise InvalidRequest("give the year and the quarter together")
        if (first is None) != (last is None):
            raise InvalidRequest("give both ends of the period: from and to (YYYY-MM-DD)")
        if year is None and first is None:
            raise InvalidRequest("give a quarter (year and quarter) or a period (from and to)")
        titled = cls.of_quarter(year, quarter) if year is not None and quarter is not None else None
        if first is None or last is None:
            assert titled is not None
            return titled
        return cls(_day(first), _day(last), titled.quarter if titled else None)

    def bounds(self, zone: str) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the first day to local midnight after the
        last (a day is 24 hours in Asia/Ho_Chi_Minh, but not in every zone)."""
        tz = ZoneInfo(zone)
        start = datetime(self.first.year, self.first.month, self.first.day, tzinfo=tz)
        after = self.last + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def is_calendar_quarter(self) -> bool:
        return self.quarter is not None and Period.of_quarter(*self.quarter) == self

    def title(self) -> tuple[str, str]:
        """(Vietnamese, English): `Quý III năm 2026`, or the days."""
        span_vi = f"từ {self.first:%d/%m/%Y} đến {self.last:%d/%m/%Y}"
        span_en = f"{self.first.isoformat()} to {self.last.isoformat()}"
        if self.quarter is None:
            return span_vi, span_en
        year, q = self.quarter
        if self.is_calendar_quarter:
            return f"Quý {ROMAN[q - 1]} năm {year}", f"Q{q} {year}"
        return f"Quý {ROMAN[q - 1]} năm {year} ({span_vi})", f"Q{q} {year} ({span_en})"

    def slug(self) -> str:
        """For file names: `2026-Q3`, or `2026-06-15_2026-09-14`."""
        if self.quarter is not None and self.is_calendar_quarter:
            return f"{self.quarter[0]}-Q{self.quarter[1]}"
        return f"{self.first.isoformat()}_{self.last.isoformat()}"


def _check_year(year: int) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise InvalidRequest(f"year {year}: from {EARLIEST_YEAR} to {LATEST_YEAR}")


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{text[:40]!r} is not a day (YYYY-MM-DD)") from None
    _check_year(day.year)
    return day
