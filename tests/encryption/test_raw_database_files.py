"""The issue's proof: after real verifications and their webhooks, the database files hold no claim in clear.

Production's shape: PASSID (the sandbox on its own, `flask --app app.sandbox run`, on a database of its own)
and our app (as `make run` serves it, pointed at that PASSID with PASSID_BASE_URL) on another. The
embedded sandbox would share our database and keep PASSID's side of the wire in clear there, so it is
not used here. A QR verification (approved on the phone), a manual token verify and a sanctions deny,
each with its webhook stored and handled; then the raw bytes of our database are read as a thief with
a copy of the disk would: SQLite's file and its write-ahead log before any checkpoint, PostgreSQL's
files of this database after a CHECKPOINT.

The scan is shown to see: a value written in clear into the same database, a short one and one large
enough for PostgreSQL to move out of line into its TOAST table, is found by the very same scan, every
TOAST chunk of it. PostgreSQL's write-ahead log is read too, from before the app's first write to after
the last, as its records' bytes (each 8 kB page's header taken out: a record that runs on to the next
page is cut by one, as some chunks of the large value's 33 kB of log are), and each hit is traced
to the database its record changed (pg_walinspect): the cluster's log is shared with every other database
on it, and another test's sandbox keeps claims in clear.

The claim field names are looked for as JSON writes them (`"income_band"`): the sandbox's own tables
exist (empty) in every database the migrations build, and their schema names columns after claims.
That no column of ours is named after a claim is checked in test_migration.py.
"""

from __future__ import annotations

import bisect
import os
import secrets
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, make_url, text

from app.passid import PassidClient
from app.passid.claims import CLAIM_FIELDS
from app.sandbox.profiles import DENY_TOKENS, PROFILES
from tests.support.postgres import POSTGRES_ADMIN_URL
from tests.support.servers import BIN, ROOT, AppServer, base_env, free_port
from tests.support.widget_http import open_qr_session, poll_until_final, widget_fields

SECRET = "whsec_raw_database_files_0123"
PROFILE = PROFILES["KE8V-3TXY-Z72L"]  # tier A, income band "GBP 40k-60k", identity verified, corridor KE→GB
DENIED = "TEST-SANC-0005"


@dataclass
class Passid:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def standalone_passid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Passid]:
    """The sandbox on its own, as PASSID runs apart from us, on a database of its own.

    One for the module: each test onboards an institution of its own on it, and only our database is scanned.
    """
    tmp_path = tmp_path_factory.mktemp("standalone-passid")
    port = free_port()
    env = base_env(f"sqlite:///{tmp_path / 'passid-side.db'}", PORT=str(port),
                   PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5")
    flask = [str(BIN / "flask"), "--app", "app.sandbox"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    with open(tmp_path / "passid.log", "ab") as log:
        process = subprocess.Popen([*flask, "run", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    passid = Passid(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "passid.log").read_text()
            try:
                if requests.get(f"{passid.url}/phone", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield passid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


@pytest.fixture
def app_on_passid(standalone_passid: Passid, fresh_database_url: str, tmp_path: Path) -> Iterator[AppServer]:
    """Our app, served as `make run` serves it, talking to that PASSID and receiving its webhooks."""
    onboarding = PassidClient(standalone_passid.url).onboard("Raw Files Bank")
    env = base_env(fresh_database_url, PASSID_BASE_URL=standalone_passid.url, PASSID_API_KEY=onboarding.sandbox_key,
                   PASSID_WEBHOOK_SECRET=SECRET, PASSID_SANDBOX_ENABLED="false", PASSID_WEBHOOK_GRACE_SECONDS="0")
    server = AppServer(env, tmp_path / "app.log")
    PassidClient(standalone_passid.url, onboarding.sandbox_key).set_webhook(f"{server.url}/webhooks/passid", SECRET)
    server.start()
    yield server
    server.stop()


def verify_everything(server: AppServer, passid: Passid) -> list[str]:
    """A QR verification approved on the phone, a manual verify and a sanctions deny; returns the code."""
    session = open_qr_session(server.url)
    phone = PassidClient(passid.url)
    phone.fulfill_request(session.request_id, phone.sandbox_login(PROFILE.token))
    assert 'data-view="success"' in poll_until_final(session).text
    for token, view in ((PROFILE.token, "success"), (DENIED, "declined")):
        fields = widget_fields(server.url)
        done = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": token}, timeout=10)
        assert f'data-view="{view}"' in done.text
    return [session.code]


def wait_handled(database_url: str, events: int, timeout: float = 30) -> None:
    """Until `events` webhooks are stored and handled (each verify's own, delivered by PASSID)."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                handled = conn.execute(text("SELECT count(*) FROM webhook_receipt "
                                            "WHERE handling_status = 'handled'")).scalar()
                rows = conn.execute(text("SELECT count(*) FROM verification")).scalar()
            if handled >= events and rows >= 3:
                return
            assert time.monotonic() < deadline, f"{handled} of {events} webhooks handled"
            time.sleep(0.2)
    finally:
        engine.dispose()


def raw_files(database_url: str) -> dict[str, bytes]:
    """Every byte of the database as it lies on disk, file by file."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        files = [path, path.with_name(path.name + "-wal")]
        return {str(f): f.read_bytes() for f in files if f.exists()}
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # what is committed reaches the data files
        directory = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (url.database,)).fetchone()[0]  # type: ignore[index]
    base = Path(directory, "base", str(oid))
    return {str(f): f.read_bytes() for f in sorted(base.iterdir()) if f.is_file()}


def needles(codes: list[str]) -> list[bytes]:
    """What must not be found: claim values, claim names as JSON keys, tokens and codes in their usual forms."""
    values = [PROFILE.claims["income_band"], PROFILE.corridor, DENY_TOKENS[DENIED], DENIED,
              PROFILE.token, PROFILE.token.replace("-", "")]
    for code in codes:
        values += [code, code.replace("-", "")]
    names = [f'"{name}"' for names in CLAIM_FIELDS.values() for name in names]
    return [value.encode() for value in values + names]


def scan(files: dict[str, bytes], wanted: list[bytes]) -> set[tuple[str, str]]:
    """(file, needle) for every needle that lies in a file's bytes as they are."""
    return {(name, needle.decode()) for name, data in files.items() for needle in wanted if needle in data}


@pytest.fixture
def wal_start(database_kind: str) -> Iterator[str | None]:
    """PostgreSQL's write-ahead log position before the test's database exists (None on SQLite), with the log
    from there kept on disk until the test ends.

    Asked before `app_on_passid`, so the log from here on holds every write the app makes. Other tests fill
    segments quickly and checkpoints recycle them: a temporary replication slot, dropped with this
    connection, keeps them. It keeps them from the last checkpoint's start, which may be far back: the scan
    starts from where the log is written now."""
    if database_kind != "postgresql":
        yield None
        return
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        slot = f"raw_scan_{secrets.token_hex(4)}"
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (slot,))
        yield str(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])  # type: ignore[index]


def wal_position() -> str:
    """Where PostgreSQL writes its log now: the positive control looks in the log from here, written while
    the slot of `wal_start` keeps it, and not through all the app wrote before."""
    with psycopg.connect(POSTGRES_ADMIN_URL) as conn:
        return str(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])  # type: ignore[index]


def lsn_number(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(number: int) -> str:
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"


def wal_hits(database_url: str, start: str, wanted: list[bytes]) -> set[tuple[str, str]]:
    """(record, needle) for each needle in the write-ahead log since `start` inside a record that changed a
    relation of this database: the raw segment files are read as a copy of the disk would hold them, and
    pg_walinspect says which record, and so which database, the bytes of each hit belong to.

    The log is searched as its records' bytes, page headers taken out (`wal_records_bytes`): a record
    runs on across pages, and a value split by a header would not be found as the file holds it.
    A full-page image stores a page as it is unless wal_compression is on, which would hide what it
    holds from any scan: so it must be off."""
    url = make_url(database_url)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        assert conn.execute("SHOW wal_compression").fetchone()[0] == "off", (  # type: ignore[index]
            "wal_compression compresses full-page images: a claim in one could not be seen by this scan")
        conn.execute("CHECKPOINT")
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (url.database,)).fetchone()[0]  # type: ignore[index]
        directory = Path(conn.execute("SHOW data_directory").fetchone()[0], "pg_wal")  # type: ignore[index]
        page, segment, align = conn.execute("SELECT wal_block_size, bytes_per_wal_segment, max_data_alignment "
                                            "FROM pg_control_init()").fetchone()  # type: ignore[misc]
        end = lsn_number(str(conn.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]))  # type: ignore[index]
        first = lsn_number(start) // segment * segment
        log = bytearray()
        for base in range(first, end, segment):
            # One byte in: at a segment's very first byte PostgreSQL names the segment before it.
            name = conn.execute("SELECT file_name FROM pg_walfile_name_offset(%s::pg_lsn)",
                                (lsn_text(base + 1),)).fetchone()[0]  # type: ignore[index]
            log += (directory / name).read_bytes()
        data, lsn_at = wal_records_bytes(log, first, end, page, segment, align)
        hits = [(lsn, needle) for needle in wanted for at in _positions(data, needle) if (lsn := lsn_at(at)) < end]
        if not hits:
            return set()
        records = conn.execute("SELECT start_lsn::text, end_lsn::text, block_ref FROM "
                               "pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn)", (start, lsn_text(end))).fetchall()
    starts = [lsn_number(record[0]) for record in records]
    found: set[tuple[str, str]] = set()
    for position, needle in hits:
        index = bisect.bisect_right(starts, position) - 1
        if index < 0 or lsn_number(records[index][1]) <= position:
            continue  # before the first record of the range, or in the padding between two
        if f"/{oid}/" in (records[index][2] or ""):
            found.add((records[index][0], needle.decode()))
    return found


XLP_LONG_HEADER = 0x0002  # xlp_info's flag: this page's header is XLogLongPageHeaderData


def wal_records_bytes(log: bytes | bytearray, first: int, end: int, page: int, segment: int,
                      align: int) -> tuple[bytes, Callable[[int], int]]:
    """The bytes of the pages of `log` (segment files from LSN `first`, a segment's start) below LSN `end`,
    each page's header left out, and the function from a position in them back to its LSN.

    A record longer than what is left of its page goes on after the next page's header, so the bytes of a
    value written in clear may be cut by a header: here they are whole again. Only headers go: every byte
    of a record is still here, in order, so whatever the files as they are show inside a record is found
    here too. The headers, as PostgreSQL 9.3 to 17 write them: XLogPageHeaderData (uint16 magic, uint16
    info, TimeLineID, XLogRecPtr pageaddr, uint32 rem_len: 20 bytes, 24 once MAXALIGNed) and, on a
    segment's first page, XLogLongPageHeaderData (then uint64 sysid, uint32 seg_size, uint32 xlog_blcksz:
    36 bytes, 40 aligned). Each is checked to name its own page and kind (or the page to be all zeros,
    as a segment's pages after a switch are), so that what is read is this log, cut where PostgreSQL cut it."""
    pieces: list[memoryview] = []
    offsets: list[int] = []  # where each page's bytes start in the result
    lsns: list[int] = []  # the LSN of each page's first byte after its header
    view, length = memoryview(log), 0
    for lsn in range(first, min(end, first + len(log)), page):
        at = lsn - first
        info, address = struct.unpack_from("=2xH4xQ", log, at)
        if address == 0 and view[at:at + page] == bytes(page):
            continue  # the rest of a segment after a switch to the next one (pg_switch_wal): zeros
        long = lsn % segment == 0
        assert address == lsn and bool(info & XLP_LONG_HEADER) == long, (
            f"the WAL page at {lsn_text(lsn)} reads as {lsn_text(address)}'s, info {info:#x}")
        header = -(-(36 if long else 20) // align) * align
        pieces.append(view[at + header:at + page])
        offsets.append(length)
        lsns.append(lsn + header)
        length += page - header

    def lsn_at(position: int) -> int:
        index = bisect.bisect_right(offsets, position) - 1
        return lsns[index] + position - offsets[index]

    return b"".join(pieces), lsn_at


def _positions(data: bytes | bytearray, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at != -1:
        yield at
        at = data.find(needle, at + 1)


def store_in_clear(database_url: str) -> tuple[str, str]:
    """Write values in clear into the database, as a column that is not encrypted would: a short one, one
    past PostgreSQL's TOAST threshold (random, so it is not compressed) that it moves out of line, and a long
    repetitive one that PostgreSQL compresses. Returns the short value and the large one."""
    short, large = secrets.token_hex(8), secrets.token_hex(16000)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE raw_scan_control (value TEXT)"))
            conn.execute(text("INSERT INTO raw_scan_control (value) VALUES (:short), (:large), (:repeated)"),
                         {"short": short, "large": large, "repeated": f'{{"clear": "{short}"}}' * 200})
    finally:
        engine.dispose()
    return short, large


def stored_runs(database_url: str, large: str) -> dict[str, bytes]:
    """The runs of bytes the large value lies on disk in, each named, to look for every one of them.

    PostgreSQL cuts it into TOAST chunks of max_toast_chunk_size bytes, each a row of the TOAST table
    and a write-ahead log record of its own: some 16 chunks, 33 kB of log, so that some fall across a log
    page's header, which a scan must see through. SQLite's overflow pages cut it too: its opening."""
    if make_url(database_url).get_backend_name() == "sqlite":
        return {"large's opening": large[:32].encode()}
    with psycopg.connect(POSTGRES_ADMIN_URL) as conn:
        size = conn.execute("SELECT max_toast_chunk_size FROM pg_control_init()").fetchone()[0]  # type: ignore[index]
    return {f"large's chunk {at // size}": large[at:at + size].encode() for at in range(0, len(large), size)}


def found(hits: set[tuple[str, str]], wanted: dict[str, bytes]) -> set[str]:
    """The names of the wanted values among hits (file or record, needle)."""
    needles = {needle for _, needle in hits}
    return {name for name, value in wanted.items() if value.decode() in needles}


def compressed_values(database_url: str) -> dict[str, int]:
    """Per column of ours, how many values PostgreSQL stored compressed: bytes a scan cannot read as they are.

    A value over about 2 kB is compressed when that saves a quarter: a claim in clear inside a long JSON
    body would be, and would slip past the scan. Encrypted values do not compress, so none should be."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            columns = conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')")).all()
            counts = {f"{table}.{column}": conn.execute(text(
                f'SELECT count(*) FROM "{table}" WHERE pg_column_compression("{column}") IS NOT NULL')).scalar_one()
                for table, column in columns}
    finally:
        engine.dispose()
    return {column: count for column, count in counts.items() if count}


def toast_file(database_url: str) -> str:
    """The file of raw_scan_control's TOAST table, where PostgreSQL keeps its out-of-line values."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            path = conn.execute(text("SELECT pg_relation_filepath(reltoastrelid) FROM pg_class "
                                     "WHERE relname = 'raw_scan_control'")).scalar_one()
            directory = conn.execute(text("SHOW data_directory")).scalar_one()
    finally:
        engine.dispose()
    return str(Path(directory, path))


def test_the_database_files_hold_no_claim_token_or_code_in_clear(
    wal_start: str | None, app_on_passid: AppServer, standalone_passid: Passid, fresh_database_url: str
) -> None:
    codes = verify_everything(app_on_passid, standalone_passid)
    wait_handled(fresh_database_url, events=3)
    files = raw_files(fresh_database_url)
    assert files and sum(len(data) for data in files.values()) > 0
    assert scan(files, needles(codes)) == set()
    if wal_start is not None:
        assert compressed_values(fresh_database_url) == {}
        assert wal_hits(fresh_database_url, wal_start, needles(codes)) == set()

    # The same scan sees what is stored in clear: in the data files (and SQLite's log), out of line in
    # PostgreSQL's TOAST table, and in PostgreSQL's write-ahead log, traced to this database; every
    # chunk of the large value, those cut by a page header of the log too.
    written_from = wal_position() if wal_start is not None else None
    short, large = store_in_clear(fresh_database_url)
    runs = stored_runs(fresh_database_url, large)
    wanted = {"short": short.encode(), **runs}
    seen = scan(raw_files(fresh_database_url), list(wanted.values()))
    assert found(seen, wanted) == set(wanted)
    if written_from is not None:
        toast = toast_file(fresh_database_url)
        assert found({hit for hit in seen if hit[0] == toast}, runs) == set(runs)
        assert compressed_values(fresh_database_url) == {"raw_scan_control.value": 1}
        assert found(wal_hits(fresh_database_url, written_from, list(wanted.values())), wanted) == set(wanted)
