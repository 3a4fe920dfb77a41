"""Personal data encrypted at rest, and the keyed hashes that keep it searchable.

What PASSID proves about a person (claims, the one-time token, the QR code, the raw webhook body),
what an analyst writes about them (a review note), and one secret of our own (a staff member's
authenticator-app secret), is stored encrypted with Fernet (AES-128-CBC
with HMAC-SHA256, from `cryptography`), so a copied database file, a backup or a stray SQL console
shows ciphertext only. The columns say so in their type (`EncryptedText`, `EncryptedBytes`,
`EncryptedInteger`): the rest of the app reads and writes plain values and never sees a ciphertext.

Keys: PASSID_DATA_KEY is a comma-separated list of Fernet keys, newest first, and
PASSID_DATA_KEYS_DECRYPT_ONLY more keys that only read. The first of PASSID_DATA_KEY encrypts; every
key decrypts (MultiFernet). Several servers share one database, and are restarted one after another,
so a rotation goes in stages that each leave every server able to read what any other writes: the
new key is added as decrypt-only everywhere, then promoted to encrypt (the old one decrypt-only), then
`flask passid rotate-data-key` rewrites every row under it (`rotate_all`), then the old key goes.

A row no key of this server reads (a server left a stage behind) raises DataKeyError, answered by
`app.error_pages` as a 500 that names the fix to the operator, never to a customer. A list is the
exception: it reads under `listing_unreadable_rows`, where such a value reads as an empty `Unreadable`
marker, so one row (marked, `unreadable`) cannot take every other row of the page down with it.

Search: an encrypted value cannot be compared in SQL (each encryption is different), so a token or
code also gets an HMAC-SHA256 of its canonical form (`search_hash`), under a key derived (HKDF) from
the data key. A lookup tries the hash under every key of the ring (`lookup_hashes`), so finding a
token keeps working between adding a key and rotating. Without the data key the hash says nothing:
unlike a plain SHA-256 it cannot be reversed by hashing every possible token.

No Flask at import: the keyring lives on the app (`app.extensions[EXTENSION]`), found through
`current_app` only when a value is bound or read, so several apps in one process keep their own keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import LargeBinary, String, Text, column, inspect, select, table, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

EXTENSION = "passid_data_keys"
# The hash key is derived, not the data key itself: one secret, two unrelated uses.
_SEARCH_HASH_INFO = b"passid-verify search hash v1"
_PASSID_PREFIX = re.compile(r"^\s*passid[\s-]+", re.IGNORECASE)
HASH_LENGTH = 64  # hex SHA-256
# The first migration that stores encrypted values; before it, the columns hold clear text.
ENCRYPTED_FROM_REVISION = "0011_encryption_at_rest"


class DataKeyError(RuntimeError):
    """A stored value that no key of this server decrypts (a wrong key, or an old one removed too soon)."""


def canonical(value: str) -> str:
    """A token or code as the hash sees it: letters and digits, upper case, without a `PASSID-` prefix.

    `passid-ke8v 3txy z72l`, `KE8V-3TXY-Z72L` and `ke8v3txyz72l` are one token; a code `ab12-cd34`
    and `AB12CD34` one code. The same rule as the console's search box (`normalise_query`).
    """
    stripped = _PASSID_PREFIX.sub("", value[:100])
    return re.sub(r"[^A-Z0-9]", "", stripped.upper())


@dataclass
class Keyring:
    """PASSID_DATA_KEY's keys, newest first: the first encrypts and hashes, all decrypt and are looked up."""

    keys: Sequence[str]
    _fernets: list[Fernet] = field(init=False, repr=False)
    _multi: MultiFernet = field(init=False, repr=False)
    _hash_keys: list[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        self._fernets = [Fernet(key) for key in self.keys]
        self._multi = MultiFernet(self._fernets)
        self._hash_keys = [
            HKDF(algorithm=SHA256(), length=32, salt=None, info=_SEARCH_HASH_INFO).derive(
                base64.urlsafe_b64decode(key))
            for key in self.keys
        ]

    def __repr__(self) -> str:  # never print a key
        return f"Keyring({len(self.keys)} keys)"

    def encrypt(self, data: bytes) -> bytes:
        return self._multi.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._multi.decrypt(token)
        except InvalidToken:
            raise DataKeyError("a stored value cannot be decrypted with any key in PASSID_DATA_KEY") from None

    def search_hash(self, value: str | None) -> str | None:
        """The keyed hash a token or code is stored and found by, under the newest key; None for nothing."""
        found = self.lookup_hashes(value)
        return found[0] if found else None

    def lookup_hashes(self, value: str | None) -> list[str]:
        """The hash under every key, newest first: what a lookup matches while rows are not yet rotated."""
        typed = canonical(value or "")
        if not typed:
            return []
        return [hmac.new(key, typed.encode("ascii"), hashlib.sha256).hexdigest() for key in self._hash_keys]


def keyring() -> Keyring:
    """The current app's keyring (installed by `init_app`)."""
    from flask import current_app

    ring: Keyring = current_app.extensions[EXTENSION]
    return ring


def search_hash(value: str | None) -> str | None:
    return keyring().search_hash(value)


def lookup_hashes(value: str | None) -> list[str]:
    return keyring().lookup_hashes(value)


# --- values no key reads, in a list --------------------------------------------------------------


class Unreadable:
    """A stored value no key of this server decrypts, as a list reads it: empty, so the row shows nothing of it.

    Only ever made under `listing_unreadable_rows`; never written back (`_storable` refuses it), so an
    empty marker cannot replace the ciphertext another server's key still reads.
    """

    __slots__ = ()


class UnreadableText(Unreadable, str):
    __slots__ = ()


class UnreadableBytes(Unreadable, bytes):
    __slots__ = ()


class UnreadableNumber(Unreadable, int):
    __slots__ = ()


# The values met while unreadable values are tolerated (a list), else None: a miss then raises DataKeyError.
_tolerated: ContextVar[list[str] | None] = ContextVar("passid_unreadable_tolerated", default=None)


@contextmanager
def unreadable_values_tolerated(where: str) -> Iterator[None]:
    """Within: a value no key reads loads as an `Unreadable` marker instead of raising; one log line after."""
    met: list[str] = []
    token = _tolerated.set(met)
    try:
        yield
    finally:
        _tolerated.reset(token)
        if met:
            log.error("%s: %d stored values cannot be decrypted with any key of this server (PASSID_DATA_KEY, "
                      "PASSID_DATA_KEYS_DECRYPT_ONLY); listed as unreadable", where, len(met))


P = ParamSpec("P")
R = TypeVar("R")


def listing_unreadable_rows(view: Callable[P, R]) -> Callable[P, R]:
    """A list view (and its template) reads a row no key decrypts as marked, not as the whole page's 500."""

    @functools.wraps(view)
    def listing(*args: P.args, **kwargs: P.kwargs) -> R:
        from flask import request

        with unreadable_values_tolerated(f"{request.method} {request.path}"):
            return view(*args, **kwargs)

    return listing


def _decrypted(stored: bytes) -> bytes | None:
    """The clear value; None for one no key reads while a list tolerates it (DataKeyError anywhere else)."""
    try:
        return keyring().decrypt(stored)
    except DataKeyError:
        met = _tolerated.get()
        if met is None:
            raise
        met.append("value")
        return None


def _storable(value: object) -> None:
    if isinstance(value, Unreadable):
        raise DataKeyError("an unreadable value cannot be stored back: it would erase what another key still reads")


def unreadable(row: object) -> bool:
    """Whether any encrypted column of `row` (a loaded model) could not be decrypted when a list read it."""
    state = inspect(row, raiseerr=True)
    return any(isinstance(getattr(row, attribute.key), Unreadable) for attribute in state.mapper.column_attrs
               if isinstance(attribute.columns[0].type, EncryptedText | EncryptedInteger | EncryptedBytes))


# --- column types ------------------------------------------------------------------------------


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token (ASCII); JSON documents are stored as their text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        _storable(value)
        return None if value is None else keyring().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        clear = _decrypted(value.encode())
        return UnreadableText() if clear is None else clear.decode()


class EncryptedInteger(TypeDecorator[int]):
    """A number that says something about a person (a score), stored as an encrypted decimal."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        _storable(value)
        return None if value is None else keyring().encrypt(str(int(value)).encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        clear = _decrypted(value.encode())
        return UnreadableNumber() if clear is None else int(clear)


class EncryptedBytes(TypeDecorator[bytes]):
    """Raw bytes (a webhook's body, exactly as signed) stored as a Fernet token."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        _storable(value)
        return None if value is None else keyring().encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        if value is None:
            return None
        clear = _decrypted(bytes(value))
        return UnreadableBytes() if clear is None else clear


def hash_column() -> Any:
    """The type of a `*_hash` column: hex HMAC-SHA256."""
    return String(HASH_LENGTH)


# --- what is encrypted where -------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptedTable:
    """One table's encrypted columns and keyed hashes, as stored (column names, not attributes)."""

    name: str
    key: str  # the primary key column
    newest_first: str  # an indexed column that orders rows by age
    text_columns: tuple[str, ...] = ()  # EncryptedText and EncryptedInteger: ASCII Fernet tokens
    bytes_columns: tuple[str, ...] = ()  # EncryptedBytes: Fernet tokens as bytes
    hashes: tuple[tuple[str, str], ...] = ()  # (hash column, the encrypted column it is the hash of)
    # (hash column, encrypted column, what in its clear value is hashed): a webhook body's token
    hashes_within: tuple[tuple[str, str, Callable[[bytes], str | None]], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.text_columns + self.bytes_columns


def token_in_event(body: bytes) -> str | None:
    """The token a webhook body's `data` names, as `app.webhooks.routes.event_subject` hashes it; None if none."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


# Every encrypted column of our tables. The sandbox_* tables are PASSID's side of the wire (in
# production they are not in our database at all) and stay as the sandbox writes them.
ENCRYPTED_TABLES: tuple[EncryptedTable, ...] = (
    EncryptedTable(
        "verification", "id", "created_at",
        text_columns=("token", "claims_json", "permissions_json", "code", "deny_reason", "decline_reason",
                      "recommendation", "corridor", "verdict_reasons"),
        hashes=(("token_hash", "token"), ("code_hash", "code"), ("deny_reason_hash", "deny_reason")),
    ),
    EncryptedTable(
        "outcome_report", "id", "id",
        text_columns=("token", "amount", "notes", "score_at_decision"),
        hashes=(("token_hash", "token"),),
    ),
    # The receipt's token hash is of the token inside its body: rotation recomputes it from there, or a
    # redaction after the old key is gone would not find the webhooks about a token-only verification.
    EncryptedTable("webhook_receipt", "id", "id", bytes_columns=("body",),
                   hashes_within=(("token_hash", "body", token_in_event),)),
    EncryptedTable("verification_session", "id", "created_at", text_columns=("permissions_json",)),
    EncryptedTable("review_decision", "id", "id", text_columns=("note",)),
    # Not personal data but a secret: whoever reads it computes a staff member's authenticator codes.
    EncryptedTable("staff_totp", "staff_id", "staff_id", text_columns=("secret",)),
)


# --- start-up check ----------------------------------------------------------------------------


def init_app(app: Flask, keys: Sequence[str]) -> None:
    """Install the keyring on `app` (PASSID_DATA_KEY's keys, then the decrypt-only ones); the caller then runs
    `unreadable_data` to refuse a wrong key. A DataKeyError on a page is answered by `app.error_pages`."""
    app.extensions[EXTENSION] = Keyring(keys)


# What the operator reads (a console page, the backend API's answer): never shown to a customer.
UNDECRYPTABLE = ("Stored data cannot be decrypted with PASSID_DATA_KEY or PASSID_DATA_KEYS_DECRYPT_ONLY on this "
                 "server. The operator should restore the key it was encrypted with (in "
                 "PASSID_DATA_KEYS_DECRYPT_ONLY, if it is no longer the one that encrypts), and retire a key only "
                 "after every server encrypts with the new one and `flask passid rotate-data-key` has run.")


def _schema_is_encrypted(connection: Connection) -> bool:
    """Whether the database is migrated to (or past) the revision that encrypts: before it, values are clear."""
    if not inspect(connection).has_table("alembic_version"):  # a new database: nothing stored yet
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return any(version >= ENCRYPTED_FROM_REVISION for version in versions)


def unreadable_data(ring: Keyring, connection: Connection) -> str | None:
    """The first table whose stored values the ring cannot decrypt, or None when all it tried read.

    Cheap by design (two indexed single-row reads per checked column, the first two of each table):
    the newest value shows a wrong key, the oldest an old key removed before `rotate-data-key` ran.
    """
    if not _schema_is_encrypted(connection):
        return None
    present = set(inspect(connection).get_table_names())  # a later revision's table, before its upgrade
    for spec in ENCRYPTED_TABLES:
        if spec.name not in present:
            continue
        for name in spec.columns[:2]:
            for direction in ("DESC", "ASC"):
                found = connection.execute(text(
                    f"SELECT {name} FROM {spec.name} WHERE {name} IS NOT NULL "  # noqa: S608 (our names)
                    f"ORDER BY {spec.newest_first} {direction} LIMIT 1"
                )).scalar()
                if found is None:
                    continue
                try:
                    ring.decrypt(found.encode("ascii") if isinstance(found, str) else bytes(found))
                except (DataKeyError, UnicodeEncodeError):
                    return spec.name
    return None


def wrong_key_sentence(table_name: str) -> str:
    return (f"PASSID_DATA_KEY cannot decrypt the data already stored in the {table_name} table: start with the key "
            "it was encrypted with (in PASSID_DATA_KEYS_DECRYPT_ONLY, if you are rotating), and remove an old key "
            "only after `flask passid rotate-data-key` has run")


# --- rewriting stored rows: rotation, and the migration that first encrypts ----------------------


BATCH = 500


@dataclass(frozen=True)
class Rewrite:
    """How a pass over the rows turns each stored value into its clear form and back into what it stores."""

    read: Callable[[bytes], bytes]  # stored -> clear
    write: Callable[[bytes], bytes]  # clear -> stored
    hashes: bool = True  # recompute the keyed hashes (not when decrypting: those columns are going)


def rotation(ring: Keyring) -> Rewrite:
    return Rewrite(read=ring.decrypt, write=ring.encrypt)


def encryption_of_clear_rows(ring: Keyring) -> Rewrite:
    return Rewrite(read=lambda stored: stored, write=ring.encrypt)


def decryption(ring: Keyring) -> Rewrite:
    return Rewrite(read=ring.decrypt, write=lambda clear: clear, hashes=False)


def rotate_all(connection: Connection, ring: Keyring, batch: int = BATCH) -> dict[str, int]:
    """Re-encrypt every encrypted value and recompute every keyed hash under the newest key.

    In batches by primary key, each committed as it goes, so a long rotation holds no lock for
    long and can simply be run again after an interruption. A row the app changed while it was being
    rewritten is left as the app wrote it (under the newest key already). Returns the rows rewritten
    per table.
    """
    return {spec.name: rewrite_table(connection, ring, spec, rotation(ring), batch=batch, commit=True)
            for spec in ENCRYPTED_TABLES}


def _as_bytes(stored: Any) -> bytes:
    if isinstance(stored, str):
        return stored.encode()
    if isinstance(stored, bytes | bytearray | memoryview):
        return bytes(stored)
    return str(stored).encode()  # a number stored in clear before the migration (an old score)


def rewrite_table(connection: Connection, ring: Keyring, spec: EncryptedTable, how: Rewrite, *,
                  batch: int = BATCH, commit: bool) -> int:
    """Apply `how` to every encrypted value of one table, in primary-key order, `batch` rows a statement.

    `commit`: commit after each batch (rotation); a migration leaves its one transaction to Alembic.
    """
    hash_names = [name for name, _ in spec.hashes] + [name for name, _, _ in spec.hashes_within]
    if not how.hashes:
        hash_names = []
    target = table(spec.name, column(spec.key), *(column(c) for c in spec.columns), *(column(h) for h in hash_names))
    key = target.c[spec.key]
    done = 0
    last: Any = None
    while True:
        query = select(key, *(target.c[c] for c in spec.columns)).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        rows = connection.execute(query).all()
        if not rows:
            return done
        for row in rows:
            values: dict[str, Any] = {}
            clear: dict[str, bytes] = {}
            for name in spec.columns:
                stored = getattr(row, name)
                if stored is None:
                    continue
                clear[name] = how.read(_as_bytes(stored))
                written = how.write(clear[name])
                values[name] = written if name in spec.bytes_columns else written.decode()
            for hash_name, source in spec.hashes if how.hashes else ():
                values[hash_name] = ring.search_hash(clear[source].decode()) if source in clear else None
            for hash_name, source, within in spec.hashes_within if how.hashes else ():
                if source in clear:  # an erased body has no hash either: nothing to rewrite
                    values[hash_name] = ring.search_hash(within(clear[source]))
            if values:
                # Only if no one changed the row since it was read: a redaction or an attached code made
                # meanwhile (already under the newest key) must not be overwritten by the old values.
                unchanged = [target.c[name].is_(None) if getattr(row, name) is None
                             else target.c[name] == getattr(row, name) for name in spec.columns]
                changed = connection.execute(
                    update(target).where(key == getattr(row, spec.key), *unchanged).values(**values))
                done += changed.rowcount
        if commit:
            connection.commit()
        last = getattr(rows[-1], spec.key)
