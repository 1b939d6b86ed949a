"""Bulk notice jobs through the API and the worker: upload, progress, bad rows and their
report, cancel, idempotency, other agencies, and a job resumed after a crash."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

import hub.notices.jobs as jobs_module
from hub.config import Settings
from hub.db import Database
from hub.models import Notice, NoticeJob, OutboxItem, Party
from hub.notices.jobs import claim_job, process_notice_jobs, run_job
from journeys.catalog import load_catalog
from tests.builders import bearer, make_party
from tests.notices.conftest import BASE_URL, PERSONALISATION, TIMEZONE, World, consent

CATALOG = load_catalog(None)
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test", data_dir=tmp_path, run_worker=False, rate_limit_per_minute=0
    )


async def citizens(database: Database, world: World, count: int) -> list[Party]:
    async with database.session() as session:
        made = []
        for number in range(count):
            party = await make_party(
                session, email=f"bulk{number}@example.nl", preferred_channel="email"
            )
            await consent(session, party, world.topic, number % 5 != 4)  # every fifth says no
            made.append(party)
    return made


def ndjson(parties: list[Party], **extra: Any) -> bytes:
    lines = [
        json.dumps(
            {
                "bsn": p.bsn,
                "topic": "allowances",
                "template": "rent",
                "personalisation": PERSONALISATION,
                **extra,
            }
        )
        for p in parties
    ]
    return ("\n".join(lines) + "\n").encode()


async def run_to_end(database: Database, settings: Settings, **options: Any) -> NoticeJob:
    job = await claim_job(database)
    assert job is not None
    return await run_job(
        database,
        job,
        store=settings.document_store,
        catalog=CATALOG,
        timezone=TIMEZONE,
        base_url=BASE_URL,
        **options,
    )


async def deliveries_per_notice(database: Database) -> list[int]:
    async with database.session() as session:
        query = select(func.count()).select_from(OutboxItem).group_by(col(OutboxItem.notice_id))
        return list((await session.exec(query)).all())


async def test_a_file_is_routed_by_the_worker_and_its_progress_is_readable(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
) -> None:
    parties = await citizens(database, world, 10)
    body = (
        ndjson(parties) + b"\n" + b'{"bsn": "111222333", "topic": "allowances"}\n' + b"not json\n"
    )
    posted = await client.post(
        "/api/notice-jobs?filename=rent.ndjson",
        content=body,
        headers=bearer(toeslagen_key) | NDJSON,
    )
    assert posted.status_code == 202, posted.text
    job = posted.json()
    assert posted.headers["location"] == f"/api/notice-jobs/{job['id']}"
    assert (job["status"], job["size"], job["rows_read"], job["percent"]) == (
        "queued",
        len(body),
        0,
        0.0,
    )

    rows = await process_notice_jobs(
        database,
        store=settings.document_store,
        catalog=CATALOG,
        timezone=TIMEZONE,
        base_url=BASE_URL,
    )
    assert rows == 12

    read = (await client.get(f"/api/notice-jobs/{job['id']}", headers=bearer(toeslagen_key))).json()
    assert read["status"] == "done"
    assert (read["rows_read"], read["accepted"], read["not_sent"], read["rejected"]) == (
        12,
        8,
        2,
        2,
    )
    assert (read["bytes_read"], read["percent"]) == (len(body), 100.0)
    assert await deliveries_per_notice(database) == [1] * 8

    report = await client.get(read["rejections_url"], headers=bearer(toeslagen_key))
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert 'filename="rent-rejected.csv"' in report.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(report.text)))
    assert lines[0] == ["row", "error", "content"]
    assert lines[1][:2] == ["11", "template: Field required."]
    assert lines[2][0] == "12"
    assert lines[2][1].startswith("The row is not valid JSON")
    assert lines[2][2] == "not json"


async def test_a_csv_file_takes_placeholders_from_its_other_columns(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
) -> None:
    parties = await citizens(database, world, 2)
    body = (
        "BSN;topic;template;allowance;start;important\r\n"
        + "".join(f"{p.bsn};allowances;rent;huurtoeslag;1 juni;ja\r\n" for p in parties)
        + f'{parties[0].bsn};allowances;rent;"zorg\ntoeslag";1 juli;misschien\r\n'
        + f"{parties[1].bsn};allowances;rent;te weinig cellen\r\n"
    ).encode()
    posted = await client.post(
        "/api/notice-jobs",
        content=body,
        headers=bearer(toeslagen_key) | {"Content-Type": "text/csv; charset=utf-8"},
    )
    assert posted.status_code == 202, posted.text
    job = await run_to_end(database, settings)
    assert (job.status, job.next_row, job.accepted, job.rejected) == ("done", 4, 2, 2)
    async with database.session() as session:
        notices = (await session.exec(select(Notice).order_by(col(Notice.job_row)))).all()
    assert [n.body for n in notices] == [
        f"Beste Citizen {p.name.split()[-1]}, u heeft mogelijk recht op huurtoeslag vanaf 1 juni."
        for p in parties
    ]
    assert all(n.important for n in notices)
    report = await client.get(
        f"/api/notice-jobs/{job.id}/rejections", headers=bearer(toeslagen_key)
    )
    rejected = list(csv.reader(io.StringIO(report.text)))
    assert rejected[1][:2] == [
        "3",
        "important: Input should be a valid boolean, unable to interpret input.",
    ]
    assert rejected[1][2] == f'{parties[0].bsn};allowances;rent;"zorg\ntoeslag";1 juli;misschien'
    assert rejected[2][:2] == ["4", "The row has 4 cells; the header names 6."]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"", "application/x-ndjson", 422, "empty"),
        (b"\n\n", "application/x-ndjson", 422, "no notices"),
        (b"bsn,template\n1,x\n", "text/csv", 422, "missing: topic"),
        (b"bsn,topic,template\n", "text/csv", 422, "no rows"),
        (b"<xml/>", "application/xml", 415, "application/x-ndjson"),
        (b"x" * 2000, "application/x-ndjson", 413, "larger than 1,000 bytes"),
    ],
)
async def test_a_file_that_cannot_be_a_job_is_refused_with_why(
    app: Any,
    client: httpx.AsyncClient,
    database: Database,
    world: World,
    toeslagen_key: str,
    body: bytes,
    content_type: str,
    status: int,
    words: str,
) -> None:
    app.state.settings.notice_job_max_bytes = 1000
    answer = await client.post(
        "/api/notice-jobs",
        content=body,
        headers=bearer(toeslagen_key) | {"Content-Type": content_type},
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    async with database.session() as session:
        assert (await session.exec(select(NoticeJob))).all() == []


async def test_a_cancelled_job_stops_after_the_batch_it_was_writing(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
) -> None:
    parties = await citizens(database, world, 9)
    posted = await client.post(
        "/api/notice-jobs", content=ndjson(parties), headers=bearer(toeslagen_key) | NDJSON
    )
    job_id = posted.json()["id"]
    # A worker's round: one batch of three rows, then the claim is let go.
    after_one = await run_to_end(database, settings, batch_rows=3, seconds=0.0)
    assert (after_one.status, after_one.next_row) == ("running", 3)

    cancelled = await client.post(
        f"/api/notice-jobs/{job_id}/cancel", headers=bearer(toeslagen_key)
    )
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["rows_read"]) == ("cancelled", 3)
    assert await claim_job(database) is None  # no worker takes it up again
    async with database.session() as session:
        assert len((await session.exec(select(Notice))).all()) == 3
    again = await client.post(f"/api/notice-jobs/{job_id}/cancel", headers=bearer(toeslagen_key))
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


async def test_jobs_are_the_agencys_own(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str, rdw_key: str
) -> None:
    parties = await citizens(database, world, 1)
    posted = await client.post(
        "/api/notice-jobs", content=ndjson(parties), headers=bearer(toeslagen_key) | NDJSON
    )
    job_id = posted.json()["id"]
    for method, path in (
        ("GET", f"/api/notice-jobs/{job_id}"),
        ("POST", f"/api/notice-jobs/{job_id}/cancel"),
        ("GET", f"/api/notice-jobs/{job_id}/rejections"),
    ):
        answer = await client.request(method, path, headers=bearer(rdw_key))
        assert answer.status_code == 404, path
    listed = await client.get("/api/notice-jobs", headers=bearer(rdw_key))
    assert listed.json() == []
    mine = await client.get("/api/notice-jobs", headers=bearer(toeslagen_key))
    assert [job["id"] for job in mine.json()] == [job_id]


async def test_the_same_idempotency_key_and_file_make_one_job(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str
) -> None:
    parties = await citizens(database, world, 3)
    headers = bearer(toeslagen_key) | NDJSON | {"Idempotency-Key": "rent-run-2026-06"}
    first = await client.post("/api/notice-jobs", content=ndjson(parties), headers=headers)
    again = await client.post("/api/notice-jobs", content=ndjson(parties), headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/api/notice-jobs", content=ndjson(parties[:1]), headers=headers)
    assert other.status_code == 422
    async with database.session() as session:
        assert len((await session.exec(select(NoticeJob))).all()) == 1


class Crash(Exception):
    """The process dying in the middle of a batch, before it commits."""


async def test_a_job_that_crashed_mid_batch_resumes_without_sending_twice(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parties = await citizens(database, world, 10)
    await client.post(
        "/api/notice-jobs", content=ndjson(parties), headers=bearer(toeslagen_key) | NDJSON
    )
    calls = 0

    def dies_in_second_batch(real: Any) -> Any:
        async def writes(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            outcome = await real(*args, **kwargs)  # the notices and deliveries are written…
            if calls == 2:
                raise Crash  # …and the process dies before the batch commits
            return outcome

        return writes

    # A batch is written by ``route_prepared`` on PostgreSQL, by ``write_plan`` on SQLite.
    for name in ("route_prepared", "write_plan"):
        monkeypatch.setattr(jobs_module, name, dies_in_second_batch(getattr(jobs_module, name)))
    with pytest.raises(Crash):
        await run_to_end(database, settings, batch_rows=4, claim_seconds=0.0)
    async with database.session() as session:
        stopped = (await session.exec(select(NoticeJob))).one()
    assert (stopped.status, stopped.next_row) == ("running", 4)

    job = await run_to_end(database, settings, batch_rows=4)  # the claim has lapsed

    assert (job.status, job.next_row, job.accepted, job.not_sent) == ("done", 10, 8, 2)
    assert job.duplicates == 0
    assert await deliveries_per_notice(database) == [1] * 8
    async with database.session() as session:
        rows = (await session.exec(select(Notice.job_row))).all()
    assert sorted(rows) == list(range(1, 11))


async def test_a_job_held_by_a_live_process_is_not_taken_over(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
) -> None:
    parties = await citizens(database, world, 3)
    await client.post(
        "/api/notice-jobs", content=ndjson(parties), headers=bearer(toeslagen_key) | NDJSON
    )
    held = await claim_job(database)
    assert held is not None
    assert await claim_job(database) is None
    assert await claim_job(database, job_id=held.id) is None
    # The holder still finishes it.
    job = await run_job(
        database,
        held,
        store=settings.document_store,
        catalog=CATALOG,
        timezone=TIMEZONE,
        base_url=BASE_URL,
    )
    assert job.status == "done"
    assert uuid.UUID(str(job.id)) == held.id


async def test_memory_stays_flat_however_long_the_file(
    database: Database, settings: Settings, world: World
) -> None:
    """Ten times the rows, about the same peak: a job holds a few batches at a time.
    (A first small job warms the caches that a process fills once.)"""
    import tracemalloc

    from hub.notices.jobs import StoredFile, create_job

    parties = await citizens(database, world, 5)
    peaks = []
    for repeat in (50, 200, 2000):
        body = b"".join(
            ndjson(parties, personalisation={**PERSONALISATION, "start": f"dag {n}"})
            for n in range(repeat // 5)
        )
        store = settings.document_store

        async def one(content: bytes = body) -> Any:
            yield content

        from hub.notices.jobs import store_stream

        stored: StoredFile = await store_stream(store, one(), max_bytes=1 << 30)
        async with database.session() as session:
            await create_job(
                session,
                agency_id="toeslagen",
                format="ndjson",
                stored=stored,
                store=store,
                filename="flat.ndjson",
                uploaded_by_kind="agency",
                uploaded_by_id=None,
            )
        del body
        tracemalloc.start()
        job = await run_to_end(database, settings, batch_rows=50)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert job.next_row == repeat
    # Bounded, not growing: a row held per row of the file would add megabytes here.
    assert peaks[2] < peaks[1] + 1_000_000, peaks


async def test_the_cap_and_duplicates_hold_across_batches_decided_before_the_last_is_written(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    world: World,
    toeslagen_key: str,
) -> None:
    """A batch is decided while the one before it is still being written: what that one
    adds must count all the same."""
    (party,) = await citizens(database, world, 1)
    days = ["1 mei", "2 mei", "2 mei", "3 mei", "4 mei", "5 mei", "1 mei"]
    body = b"".join(
        ndjson([party], personalisation={**PERSONALISATION, "start": day}) for day in days
    )
    await client.post("/api/notice-jobs", content=body, headers=bearer(toeslagen_key) | NDJSON)
    job = await run_to_end(database, settings, batch_rows=2)
    # 1 and 2 May go out; the second 2 May is a duplicate (same batch); 3 May is the third
    # of the day (next batch); 4 and 5 May are over the cap; the last 1 May is a duplicate
    # of a notice two batches back.
    assert (job.accepted, job.not_sent, job.duplicates) == (3, 2, 2)
    async with database.session() as session:
        notices = (await session.exec(select(Notice).order_by(col(Notice.job_row)))).all()
    assert [(n.job_row, n.status, n.reason) for n in notices] == [
        (1, "sending", None),
        (2, "sending", None),
        (4, "sending", None),
        (5, "not-sent", "daily_cap"),
        (6, "not-sent", "daily_cap"),
    ]
