"""How one environment variable's text becomes a value: the parser column of the settings table.

Each parser turns one variable's text into a value and, when it cannot, adds a sentence naming the
variable to `problems` and returns a stand-in, so the loader's loop goes on and every problem is
reported at once. They know nothing of which variable they read: the table (app/config/settings.py)
pairs them with names, bounds and defaults.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from babel.numbers import is_currency

T = TypeVar("T")

RATE_PATTERN = re.compile(r"^\d{1,6}\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?$")


class Parser(Generic[T]):
    """The column of the table that says how a variable is read and which values are allowed."""

    def unset(self, raw: str) -> bool:
        """Whether `raw` counts as not set, so the row's default is read instead (blank, for optional lists)."""
        return False

    def parse(self, raw: str, variable: str, problems: list[str]) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Parser[float]):
    minimum: float
    maximum: float

    def parse(self, raw: str, variable: str, problems: list[str]) -> float:
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{variable} must be a number, got {raw!r}")
            return self.minimum
        if not self.minimum <= value <= self.maximum:
            problems.append(f"{variable} must be between {self.minimum:g} and {self.maximum:g}, got {raw!r}")
        return value


@dataclass(frozen=True)
class WholeNumber(Parser[int]):
    """A count or a number of seconds; a fraction is cut off ("5.7" reads as 5), as it always was."""

    minimum: int
    maximum: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> int:
        value = Number(self.minimum, self.maximum).parse(raw, variable, problems)
        # nan and inf are reported out of bounds above; turning them into an int would raise instead.
        return int(value) if math.isfinite(value) else self.minimum


@dataclass(frozen=True)
class Flag(Parser[bool]):
    def parse(self, raw: str, variable: str, problems: list[str]) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        problems.append(f"{variable} must be true or false, got {raw!r}")
        return False


@dataclass(frozen=True)
class Text(Parser[str | None]):
    """A string, optionally matching `pattern`; blank is None when `optional` (set it later, or go without).

    `quote=False` for a secret: the sentence must not copy it into a service log.
    """

    pattern: re.Pattern[str] | None = None
    must: str = ""
    optional: bool = False
    quote: bool = True
    strip: bool = True
    trim: str = ""  # trailing characters dropped, e.g. the "/" after a base URL

    def parse(self, raw: str, variable: str, problems: list[str]) -> str | None:
        value = raw.strip().rstrip(self.trim) if self.strip else raw
        if self.optional and not value:
            return None
        if self.pattern is not None and not self.pattern.match(value):
            problems.append(f"{variable} {self.must}" + (f", got {value!r}" if self.quote else ""))
        return value


@dataclass(frozen=True)
class Name(Parser[str]):
    longest: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if not 1 <= len(value) <= self.longest:
            problems.append(f"{variable} must be 1–{self.longest} characters")
        return value


@dataclass(frozen=True)
class RateLimit(Parser[str]):
    example: str = "10 per minute"

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if not RATE_PATTERN.match(value):
            problems.append(f"{variable} must look like {self.example!r}, got {value!r}")
        return value


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Items(Parser[tuple[str, ...]]):
    """Comma-separated entries, each matching `pattern` when there is one."""

    pattern: re.Pattern[str] | None = None
    must: str = ""

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        items = _list(raw)
        if self.pattern is not None:
            problems.extend(f"{variable} entry {item!r} {self.must}" for item in items
                            if not self.pattern.match(item))
        return items


@dataclass(frozen=True)
class HostNames(Parser[tuple[str, ...] | None]):
    """PASSID_TRUSTED_HOSTS: None when blank, so `_trusted_hosts` derives the list from HOST or the public URL."""

    entries: Items

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...] | None:
        return self.entries.parse(raw, variable, problems) if raw.strip() else None


@dataclass(frozen=True)
class Choices(Parser[tuple[str, ...]]):
    """Comma-separated picks from `choices`; no pick at all reads the default."""

    choices: tuple[str, ...]
    noun: str

    def unset(self, raw: str) -> bool:
        return not _list(raw)

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        picked = _list(raw)
        unknown = [item for item in picked if item not in self.choices]
        if unknown:
            problems.append(f"{variable} has unknown {self.noun}(s) {', '.join(unknown)}; "
                            f"choose from {', '.join(self.choices)}")
        return picked


@dataclass(frozen=True)
class CustomerClaims(Choices):
    """PASSID_CUSTOMER_CLAIMS: the permissions whose lines the customer's success screen shows; `none` for none.

    The bank's own assessment (`withheld`: fraud risk, sanctions) is refused by name: telling a customer how
    their screening came out is the bank's call, and for sanctions it is tipping-off.
    """

    withheld: tuple[str, ...] = ()

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        if raw.strip().lower() == "none":
            return ()
        picked = _list(raw)
        withheld = [item for item in picked if item in self.withheld]
        if withheld:
            problems.append(f"{variable} names {', '.join(withheld)}: the bank's own assessment, which the "
                            "customer never reads (staff and the API still see it); choose from "
                            f"{', '.join(self.choices)}, or none")
        others = ",".join(item for item in picked if item not in self.withheld)
        return tuple(item for item in super().parse(others, variable, problems) if item)


@dataclass(frozen=True)
class Currency(Parser[str]):
    """An ISO 4217 code as Babel's CLDR data knows it ("usd" reads as USD); "XYZ" or "dollars" is refused."""

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip().upper()
        if not is_currency(value):
            problems.append(f"{variable} must be an ISO 4217 currency code such as USD, GBP or KES, got {raw!r}")
        return value


@dataclass(frozen=True)
class BarSeparatedNames(Parser[tuple[str, ...]]):
    """PASSID_INSTITUTION_NAMES: the other names an embed may show.

    A bar, not a comma, because names hold commas ("Acme Lending, Ltd"). Each 1–80
    characters with no control characters, like PASSID_INSTITUTION_NAME.
    """

    longest: int

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        names: list[str] = []
        for item in raw.split("|"):
            name = item.strip()
            if not name:
                continue
            if len(name) > self.longest or any(ord(c) < 32 or ord(c) == 127 for c in name):
                problems.append(f"{variable} entry {name[:40]!r} must be 1–{self.longest} characters with no "
                                "control characters (separate names with |)")
            elif name not in names:
                names.append(name)
        return tuple(names)


@dataclass(frozen=True)
class Schedule(Parser[tuple[float, ...]]):
    """Comma-separated seconds, none negative; blank reads the default. `stand_in` when the text is wrong."""

    stand_in: tuple[float, ...]

    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[float, ...]:
        try:
            schedule = tuple(float(s) for s in raw.split(","))
        except ValueError:
            schedule = ()
        # nan and inf parse as floats but no delivery can wait for them; a week is past any retry schedule.
        if not schedule or any(not 0 <= s <= 7 * 24 * 3600 for s in schedule):
            problems.append(f"{variable} must be comma-separated seconds, e.g. 0,30,300,1800,7200")
            return self.stand_in
        return schedule


@dataclass(frozen=True)
class VerdictRuleList(Parser[dict[str, str]]):
    """PASSID_VERDICT_RULES: `finding=outcome` pairs, comma-separated, laid over the default rules.

    Only the claim-based findings (`findings`) are configurable: a token PASSID did not verify is always
    a decline, and a sanctions hard deny can never be ruled into an approval.
    """

    findings: tuple[str, ...]
    outcomes: tuple[str, ...]

    def parse(self, raw: str, variable: str, problems: list[str]) -> dict[str, str]:
        rules: dict[str, str] = {}
        for item in _list(raw):
            name, _, outcome = (part.strip() for part in item.partition("="))
            if name not in self.findings:
                problems.append(f"{variable} names an unknown finding {name[:40]!r}; "
                                f"the findings are {', '.join(self.findings)}")
            elif outcome not in self.outcomes:
                problems.append(f"{variable} entry {item[:60]!r} must end in ={'|'.join(self.outcomes)}")
            else:
                rules[name] = outcome
        return rules


@dataclass(frozen=True)
class RoleMap(Parser[dict[str, str]]):
    """PASSID_OIDC_ROLE_MAP: `claim value=role` pairs separated by `;`, read as {claim value: role}.

    A semicolon, not a comma, and the role after the *last* `=`: group names from a directory hold both
    commas and equals signs (`CN=Tellers,OU=Groups,DC=bank,DC=example=counter`).
    """

    roles: tuple[str, ...]

    def parse(self, raw: str, variable: str, problems: list[str]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for item in (part.strip() for part in raw.split(";")):
            if not item:
                continue
            value, equals, role = (part.strip() for part in item.rpartition("="))
            if not equals or not value or role not in self.roles:
                problems.append(f"{variable} entry {item[:60]!r} must be CLAIM VALUE=ROLE, the role one of "
                                f"{', '.join(self.roles)} (separate entries with ;)")
            elif value in mapping and mapping[value] != role:
                problems.append(f"{variable} maps {value[:60]!r} to two roles")
            else:
                mapping[value] = role
        return mapping


@dataclass(frozen=True)
class RateLimitStorage(Parser[str]):
    """`database`: counters in the app's own database, shared by every process (app/plumbing/rate_limit_storage.py)."""

    def parse(self, raw: str, variable: str, problems: list[str]) -> str:
        value = raw.strip()
        if value in ("database", "database://"):
            return "database://"
        if not re.match(r"^(memory|redis|rediss|memcached|mongodb)://", value):
            problems.append(
                f"{variable} must be database (the app's own database), memory:// "
                "or a redis:// (or memcached://) address"  # not quoted back: an address may hold a password
            )
        return value


@dataclass(frozen=True)
class DataKeys(Parser[tuple[str, ...]]):
    """PASSID_DATA_KEY: Fernet keys, newest first, comma-separated; never quoted back (they are secrets)."""

    def parse(self, raw: str, variable: str, problems: list[str]) -> tuple[str, ...]:
        keys = _list(raw)
        for number, key in enumerate(keys, start=1):
            if not is_fernet_key(key):
                problems.append(f"{variable} key {number} of {len(keys)} is not a Fernet key (44 characters of "
                                "URL-safe base64; make one with `python -c \"from cryptography.fernet import "
                                "Fernet; print(Fernet.generate_key().decode())\"`)")
        return keys


def is_fernet_key(key: str) -> bool:
    """32 bytes in URL-safe base64, as Fernet reads a key (checked here without importing cryptography)."""
    try:
        return len(key) == 44 and len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        return False


@dataclass(frozen=True)
class Directory(Parser[Path]):
    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> Path:
        return Path(raw.strip())


def one_of(choices: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("^(" + "|".join(re.escape(choice) for choice in choices) + ")$")


LOGO_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml", ".webp": "image/webp", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg"}
LOGO_MAX_BYTES = 100_000


class LogoFile(Parser[Path | None]):
    """PASSID_LOGO_PATH: an image file this app can read, small enough to sit in every first visit's budget."""

    def unset(self, raw: str) -> bool:
        return not raw.strip()

    def parse(self, raw: str, variable: str, problems: list[str]) -> Path | None:
        if not raw.strip():
            return None
        path = Path(raw.strip())
        if path.suffix.lower() not in LOGO_SUFFIXES:
            problems.append(f"{variable} must be a {', '.join(sorted(LOGO_SUFFIXES))} file, got {str(path)!r}")
        elif not path.is_file():
            problems.append(f"{variable} names no readable file: {str(path)!r}")
        elif path.stat().st_size > LOGO_MAX_BYTES:
            size = path.stat().st_size
            problems.append(f"{variable} must be at most {LOGO_MAX_BYTES // 1000} KB, got {size:,} bytes")
        return path
