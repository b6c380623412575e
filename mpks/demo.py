"""A small, realistic demo data set, loaded through the public API like any client would.

Every command carries a fixed Idempotency-Key, so loading it twice changes nothing.
"""

from __future__ import annotations

import time

import httpx

from shared.auth import Role, mint_dev_token
from shared.settings import Settings

# (province, PDM code, institution name, type, owner)
INSTITUTIONS = [
    ("35", "3578", "LKSA Muhammadiyah Wiyung", "lksa", "muhammadiyah"),
    ("35", "3578", "Muhammadiyah Senior Care Surabaya", "senior_care", "muhammadiyah"),
    ("35", "3515", "PSKM Sidoarjo", "pskm", "muhammadiyah"),
    ("35", "3578", "Rumah Sakinah 'Aisyiyah Surabaya", "rumah_sakinah", "aisyiyah"),
    ("34", "3471", "Panti Asuhan Yatim Putri 'Aisyiyah Yogyakarta", "lksa", "aisyiyah"),
    ("34", "3404", "Muhammadiyah Disability Center Sleman", "disability_center", "muhammadiyah"),
    ("31", "3174", "Rumah Singgah Muhammadiyah Jakarta Selatan", "rumah_singgah", "muhammadiyah"),
    (
        "31",
        "3172",
        "Balai Kesejahteraan Sosial Muhammadiyah Jakarta Timur",
        "bakesos",
        "muhammadiyah",
    ),
]
WORKERS = [
    ("35", "3578", "Siti Rahmawati", "1988-04-12"),
    ("35", "3515", "Ahmad Fauzi", "1992-09-30"),
    ("34", "3471", "Nur Hidayah", "1985-01-21"),
    ("31", "3174", "Muhammad Iqbal", "1990-06-05"),
]
COMPLAINTS = [
    (
        "35",
        "LKSA Muhammadiyah Wiyung",
        "phone",
        "Wali santri melaporkan anak asuh jarang mendapat kunjungan pendamping.",
        True,
    ),
    (
        "34",
        None,
        "whatsapp",
        "Warga melaporkan lansia terlantar di sekitar Kotagede, butuh penjangkauan.",
        False,
    ),
    (
        "31",
        "Rumah Singgah Muhammadiyah Jakarta Selatan",
        "walk_in",
        "Permintaan rujukan layanan kesehatan untuk anak jalanan binaan rumah singgah.",
        True,
    ),
]


def _client(settings: Settings, url: str, tenant: str, role: Role) -> httpx.Client:
    token = mint_dev_token(settings, sub="demo-loader", tenant=tenant, roles=[role])
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def load_demo(settings: Settings, urls: dict[str, str]) -> str:
    ids: dict[str, str] = {}
    for number, (tenant, pdm, name, kind, owner) in enumerate(INSTITUTIONS, 1):
        with _client(settings, urls["registry"], tenant, Role.WILAYAH_ADMIN) as c:
            r = c.post(
                f"/v1/tenants/{tenant}/institutions",
                json={"name": name, "kind": kind, "pdm": pdm, "owner": owner},
                headers={"Idempotency-Key": f"demo-institution-{number}"},
            )
            r.raise_for_status()
            ids[name] = r.json()["id"]
    if "hr" in urls:
        for number, (tenant, pdm, full_name, birth) in enumerate(WORKERS, 1):
            with _client(settings, urls["hr"], tenant, Role.HR_OFFICER) as c:
                c.post(
                    f"/v1/tenants/{tenant}/workers",
                    json={"full_name": full_name, "birth_date": birth, "pdm": pdm},
                    headers={"Idempotency-Key": f"demo-worker-{number}"},
                ).raise_for_status()
    if "cases" in urls:
        for number, (tenant, about, channel, summary, child) in enumerate(COMPLAINTS, 1):
            institution_id = ids.get(about) if about else None
            with _client(settings, urls["cases"], tenant, Role.CASE_WORKER) as c:
                if institution_id:
                    _wait_for_directory(c, tenant, institution_id)
                c.post(
                    f"/v1/tenants/{tenant}/complaints",
                    json={
                        "channel": channel,
                        "summary": summary,
                        "concerns_child": child,
                        "institution_id": institution_id,
                    },
                    headers={"Idempotency-Key": f"demo-complaint-{number}"},
                ).raise_for_status()
    return (
        f"demo data: {len(INSTITUTIONS)} institutions, {len(WORKERS)} workers, "
        f"{len(COMPLAINTS)} complaints in provinces 31, 34, 35"
    )


def _wait_for_directory(client: httpx.Client, tenant: str, institution_id: str) -> None:
    """Cases learns of institutions from the registry's events: wait until it has."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entries = client.get(f"/v1/tenants/{tenant}/directory/institutions").json()
        if any(e["institution_id"] == institution_id for e in entries):
            return
        time.sleep(0.2)
    raise RuntimeError(f"cases did not learn of institution {institution_id} within 30s")
