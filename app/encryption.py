"""Personal data encrypted at rest, and the keyed hashes that keep it searchable.

What PASSID proves about a person (claims, the one-time token, the QR code, the raw webhook body),
and what an analyst writes about them (a review note), is stored encrypted with Fernet (AES-128-CBC
with HMAC-SHA256, from `cryptography`), so a copied database file, a backup or a stray SQL console
shows ciphertext only. The columns say so in their type (`EncryptedText`, `EncryptedBytes`,
`EncryptedInteger`): the rest of the app reads and writes plain values and never sees a ciphertext.

Keys: PASSID_DATA_KEY is a comma-separated list of Fernet keys, newest first. The first encrypts;
every one decrypts (MultiFernet), so a new key can be put in front while rows written under the old
one still read; `flask passid rotate-data-key` then rewrites every row under the new key
(`rotate_all`), after which the old key can go.

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
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import LargeBinary, String, Text, column, inspect, select, table, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from flask import Flask, Response

log = logging.getLogger(__name__)

EXTENSION = "passid_data_keys"
# The hash key is derived, not the data key itself: one secret, two unrelated uses.
_SEARCH_HASH_INFO = b"passid-verify search hash v1"
_PASSID_PREFIX = re.compile(r"^\s*passid[\s-]+", re.IGNORECASE)
HASH_LENGTH = 64  # hex SHA-256
# The first migration that stores encrypted values; before it, the columns hold clear text.
ENCRYPTED_FROM_REVISION = "0011_encryption_at_rest"


class DataKeyError(RuntimeError):
    """A stored value that no key of PASSID_DATA_KEY decrypts (a wrong key, or an old one removed too soon)."""


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


# --- column types ------------------------------------------------------------------------------


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token (ASCII); JSON documents are stored as their text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().decrypt(value.encode()).decode()


class EncryptedInteger(TypeDecorator[int]):
    """A number that says something about a person (a score), stored as an encrypted decimal."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        return None if value is None else keyring().encrypt(str(int(value)).encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(keyring().decrypt(value.encode()))


class EncryptedBytes(TypeDecorator[bytes]):
    """Raw bytes (a webhook's body, exactly as signed) stored as a Fernet token."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else keyring().encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else keyring().decrypt(bytes(value))


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
                      "recommendation", "corridor"),
        hashes=(("token_hash", "token"), ("code_hash", "code")),
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
)


# --- start-up check ----------------------------------------------------------------------------


def init_app(app: Flask, keys: Sequence[str]) -> None:
    """Install the keyring on `app`; the caller then runs `unreadable_data` to refuse a wrong key."""
    app.extensions[EXTENSION] = Keyring(keys)
    app.register_error_handler(DataKeyError, _undecryptable)


UNDECRYPTABLE = ("Stored data cannot be decrypted with PASSID_DATA_KEY. The operator should restore the missing "
                 "key (after the current one) and run `flask passid rotate-data-key` before removing it again.")


def _undecryptable(_error: DataKeyError) -> Response:
    """A row no key decrypts, met on a page (the start-up check reads only the newest and oldest rows: an
    old key removed after an interrupted rotation shows here). One line in the log and one sentence for the
    operator, not a traceback: the fix is a setting, not a bug."""
    from flask import Response, request

    log.error("%s %s: a stored value cannot be decrypted with any key in PASSID_DATA_KEY; restore the key "
              "it was encrypted with", request.method, request.path)
    if request.path.startswith("/api/"):  # the backend APIs' error shape (app/widget/results.py)
        response = Response(json.dumps({"error": {"code": "DATA_KEY", "message": UNDECRYPTABLE}}),
                            status=500, mimetype="application/json")
    else:
        response = Response(UNDECRYPTABLE, status=500, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


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
            "it was encrypted with (after a new one, if you are rotating), and remove an old key only after "
            "`flask passid rotate-data-key` has run")


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
