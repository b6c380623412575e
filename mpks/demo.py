"""A small, realistic demo data set, loaded through the public API like any client would.

Province 35 (Jawa Timur) is shown whole: its councils (PDMs with their branches, a PDA with
PCAs), institutions of every type placed under them with a profile and officers, policies in
every state, accreditations of every grade and licences, some about to expire; provinces 34
and 31 get a few institutions each.

Every command carries a fixed Idempotency-Key, so loading it twice changes nothing. The few
items dated from today (an accreditation and licences about to expire, an expired licence)
keep their key on a later day: the registry then answers that the key was used for a
different request, which means the item is already loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from shared.auth import Role, mint_dev_token
from shared.settings import Settings

# Who proposes and who decides: a council never decides on its own proposal.
LOADER = "demo-loader"
REVIEWER = "demo-reviewer"
STAFF = "demo-staff"
AREA_CODES = {"3578": "031", "3515": "031", "3573": "0341", "3524": "0322"}
PROVINCES = {"31": "DKI Jakarta", "34": "DI Yogyakarta", "35": "Jawa Timur"}

# Province 35's councils: (kind, code, name). A branch's first 4 digits are its PDM's (PDA's).
UNITS = [
    ("pdm", "3578", "PDM Kota Surabaya"),
    ("pcm", "357803", "PCM Gayungan"),
    ("pcm", "357813", "PCM Wiyung"),
    ("pda", "3578", "PDA Kota Surabaya"),
    ("pca", "357810", "PCA Gubeng"),
    ("pdm", "3515", "PDM Sidoarjo"),
    ("pcm", "351502", "PCM Candi"),
    ("pcm", "351509", "PCM Waru"),
    ("pdm", "3573", "PDM Kota Malang"),
    ("pcm", "357305", "PCM Lowokwaru"),
    ("pda", "3573", "PDA Kota Malang"),
    ("pca", "357303", "PCA Klojen"),
    ("pdm", "3524", "PDM Lamongan"),
    ("pcm", "352425", "PCM Paciran"),
]


@dataclass(frozen=True)
class Officer:
    full_name: str
    born: date
    female: bool


@dataclass(frozen=True)
class Accreditation:
    grade: str  # A, B, C or not_accredited
    decided_on: date
    score: int  # the five components are spread around it
    # Days from today to its end (an accreditation about to expire); None: the default term.
    expires_in_days: int | None = None
    revoked: bool = False


@dataclass(frozen=True)
class Institution:
    tenant: str
    pdm: str
    name: str
    kind: str
    owner: str = "muhammadiyah"
    unit: str | None = None
    # The profile: street address (its regency is the PDM), capacity, what it offers.
    address: str | None = None
    capacity: int = 0
    services: tuple[str, ...] = ()
    beneficiaries: dict[str, int] = field(default_factory=dict)
    officers: tuple[Officer, ...] = ()  # head, then finance officer
    accreditation: Accreditation | None = None
    # Days from today to the operating licence's end: None, a valid one of five years.
    operating_licence_days: int | None = None

    def registration(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "pdm": self.pdm,
            "owner": self.owner,
        }
        if self.unit:
            body["unit"] = self.unit
        return body


def _o(name: str, born: str, female: bool = False) -> Officer:
    return Officer(name, date.fromisoformat(born), female)


def _a(grade: str, decided: str, score: int, **kw: Any) -> Accreditation:
    return Accreditation(grade, date.fromisoformat(decided), score, **kw)


# The first eight keep their place: their Idempotency-Key is their position in this list.
INSTITUTIONS = [
    Institution(
        "35",
        "3578",
        "LKSA Muhammadiyah Wiyung",
        "lksa",
        address="Jl. Raya Menganti Wiyung No. 12, Wiyung",
        capacity=60,
        services=("residential_care", "education", "counselling"),
        beneficiaries={"children": 54},
        officers=(_o("Abdul Rahman Hakim", "1972-03-14"), _o("Sri Wahyuni", "1980-11-02", True)),
        accreditation=_a("A", "2024-02-20", 88),
    ),
    Institution(
        "35",
        "3578",
        "Muhammadiyah Senior Care Surabaya",
        "senior_care",
        address="Jl. Ketintang Baru II No. 5, Gayungan",
        capacity=40,
        services=("residential_care", "health"),
        beneficiaries={"elderly": 37},
        officers=(
            _o("Endang Sulistyowati", "1968-07-21", True),
            _o("Bambang Irawan", "1975-01-09"),
        ),
        accreditation=_a("B", "2024-06-11", 76),
    ),
    Institution(
        "35",
        "3515",
        "PSKM Sidoarjo",
        "pskm",
        address="Jl. Pahlawan No. 27, Sidoarjo",
        capacity=150,
        services=("family_based_care", "family_support", "economic_empowerment"),
        beneficiaries={"children": 120, "families": 85},
        officers=(
            _o("Moch. Syaifuddin", "1977-05-30"),
            _o("Lailatul Fitriyah", "1986-09-17", True),
        ),
        accreditation=_a("B", "2023-10-03", 72),
    ),
    Institution(
        "35",
        "3578",
        "Rumah Sakinah 'Aisyiyah Surabaya",
        "rumah_sakinah",
        "aisyiyah",
        address="Jl. Gubeng Kertajaya V No. 8, Gubeng",
        capacity=20,
        services=("counselling", "shelter", "family_support"),
        beneficiaries={"families": 64, "children": 18},
        officers=(
            _o("Dra. Hj. Siti Aminah", "1965-12-01", True),
            _o("Nurul Azizah", "1990-04-25", True),
        ),
        accreditation=_a("C", "2025-01-15", 61),
        operating_licence_days=12,
    ),
    Institution(
        "34",
        "3471",
        "Panti Asuhan Yatim Putri 'Aisyiyah Yogyakarta",
        "lksa",
        "aisyiyah",
        accreditation=_a("A", "2023-08-08", 90),
    ),
    Institution(
        "34",
        "3404",
        "Muhammadiyah Disability Center Sleman",
        "disability_center",
        accreditation=_a("B", "2024-09-19", 74),
    ),
    Institution(
        "31",
        "3174",
        "Rumah Singgah Muhammadiyah Jakarta Selatan",
        "rumah_singgah",
        accreditation=_a("C", "2025-03-04", 63),
    ),
    Institution(
        "31",
        "3172",
        "Balai Kesejahteraan Sosial Muhammadiyah Jakarta Timur",
        "bakesos",
        accreditation=_a("B", "2024-11-27", 70),
    ),
    # Jawa Timur, placed under its branches.
    Institution(
        "35",
        "3578",
        "PSKM Muhammadiyah Wiyung",
        "pskm",
        unit="357813",
        address="Jl. Babatan Indah No. 3, Wiyung",
        capacity=90,
        services=("family_based_care", "family_support"),
        beneficiaries={"children": 75, "families": 40},
        officers=(_o("Ahmad Zainuri", "1979-02-11"), _o("Rina Kusumawati", "1988-06-06", True)),
        accreditation=_a("B", "2024-04-22", 74),
        operating_licence_days=25,
    ),
    Institution(
        "35",
        "3578",
        "PAKM Muhammadiyah Gayungan",
        "pakm",
        unit="357803",
        address="Jl. Gayungsari Barat No. 44, Gayungan",
        capacity=50,
        services=("family_based_care", "day_care"),
        beneficiaries={"children": 46, "families": 30},
        officers=(_o("Heru Prasetyo", "1981-08-19"), _o("Dewi Anggraini", "1987-03-03", True)),
        accreditation=_a("A", "2021-09-01", 86, expires_in_days=45),
    ),
    Institution(
        "35",
        "3578",
        "LKSA Putri 'Aisyiyah Gubeng",
        "lksa",
        "aisyiyah",
        unit="357810",
        address="Jl. Airlangga No. 17, Gubeng",
        capacity=45,
        services=("residential_care", "education"),
        beneficiaries={"children": 41},
        officers=(_o("Umi Kulsum", "1970-10-10", True), _o("Fatimatuz Zahro", "1992-01-28", True)),
        accreditation=_a("B", "2023-12-05", 78),
    ),
    Institution(
        "35",
        "3515",
        "Rumah Singgah Muhammadiyah Waru",
        "rumah_singgah",
        unit="351509",
        address="Jl. Raya Waru No. 101, Waru",
        capacity=25,
        services=("shelter", "outreach", "health"),
        beneficiaries={"children": 38, "others": 15},
        officers=(_o("Slamet Riyadi", "1983-04-04"), _o("Yuliana Puspitasari", "1991-07-12", True)),
        accreditation=_a("C", "2024-08-30", 58),
        operating_licence_days=-20,
    ),
    Institution(
        "35",
        "3515",
        "Bakesos Muhammadiyah Sidoarjo",
        "bakesos",
        address="Jl. Mojopahit No. 66, Sidoarjo",
        capacity=300,
        services=("outreach", "economic_empowerment", "family_support"),
        beneficiaries={"families": 210, "elderly": 45, "others": 60},
        officers=(_o("Khoirul Anam", "1974-12-24"), _o("Siti Maisaroh", "1984-05-15", True)),
        accreditation=_a("B", "2024-03-18", 71, revoked=True),
    ),
    Institution(
        "35",
        "3515",
        "Panti Wreda Muhammadiyah Candi",
        "senior_care",
        unit="351502",
        address="Jl. Raya Candi No. 9, Candi",
        capacity=30,
        services=("residential_care", "health", "day_care"),
        beneficiaries={"elderly": 28},
        officers=(_o("Suharto", "1962-06-17"), _o("Tri Handayani", "1978-09-09", True)),
        accreditation=_a("B", "2025-02-10", 75),
    ),
    Institution(
        "35",
        "3573",
        "LKSA Muhammadiyah Lowokwaru",
        "lksa",
        unit="357305",
        address="Jl. Soekarno-Hatta No. 21, Lowokwaru",
        capacity=70,
        services=("residential_care", "education", "counselling"),
        beneficiaries={"children": 66},
        officers=(_o("M. Nasrullah", "1976-11-30"), _o("Eka Wulandari", "1985-02-14", True)),
        accreditation=_a("A", "2025-05-21", 91),
    ),
    Institution(
        "35",
        "3573",
        "Rumah Sakinah 'Aisyiyah Klojen",
        "rumah_sakinah",
        "aisyiyah",
        unit="357303",
        address="Jl. Kawi No. 14, Klojen",
        capacity=15,
        services=("counselling", "shelter"),
        beneficiaries={"families": 52},
        officers=(_o("Hj. Muslikhah", "1969-03-08", True),),
        accreditation=_a("not_accredited", "2025-04-02", 44),
    ),
    Institution(
        "35",
        "3573",
        "Muhammadiyah Disability Center Malang",
        "disability_center",
        address="Jl. Bendungan Sutami No. 88, Lowokwaru",
        capacity=35,
        services=("rehabilitation", "education", "day_care"),
        beneficiaries={"persons_with_disabilities": 33, "families": 20},
        officers=(_o("Agus Setiawan", "1982-10-05"), _o("Ratna Sari Dewi", "1989-12-19", True)),
        accreditation=_a("C", "2024-10-14", 60),
    ),
    Institution(
        "35",
        "3524",
        "PAKM Muhammadiyah Paciran",
        "pakm",
        unit="352425",
        address="Jl. Raya Paciran No. 5, Paciran",
        capacity=55,
        services=("family_based_care", "education"),
        beneficiaries={"children": 49},
        officers=(_o("Imam Syafi'i", "1973-01-20"),),
    ),
    Institution(
        "35",
        "3524",
        "LKSA Muhammadiyah Lamongan",
        "lksa",
        address="Jl. Lamongrejo No. 39, Lamongan",
        capacity=65,
        services=("residential_care", "education"),
        beneficiaries={"children": 58},
        officers=(_o("Mustofa Kamal", "1971-08-08"), _o("Nur Khasanah", "1983-11-11", True)),
        accreditation=_a("B", "2023-07-27", 73),
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
RULE = "MPKS rule 268/1.7/A/2023"
TERM_START = date(2024, 1, 15)  # the officers' term: four years, the councils' period
TERM_END = date(2028, 1, 14)
BENEFICIARY_YEAR = "2025"
ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]


def fake_nik(district: str, born: date, female: bool, serial: int) -> str:
    """A NIK of the valid shape (never a real one's on purpose): district of registration,
    birth date with 40 added to a woman's day, a serial."""
    day = born.day + (40 if female else 0)
    return f"{district}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"


class Loader:
    """Posts the demo's commands, one client per identity (kept open: a few seconds in all)."""

    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.clients: dict[tuple[str, str, Role, str | None], httpx.Client] = {}

    def client(
        self, tenant: str, role: Role, sub: str = LOADER, institution: str | None = None
    ) -> httpx.Client:
        key = (tenant, sub, role, institution)
        if key not in self.clients:
            token = mint_dev_token(
                self.settings, sub=sub, tenant=tenant, roles=[role], institution=institution
            )
            self.clients[key] = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
        return self.clients[key]

    def post(
        self,
        tenant: str,
        path: str,
        body: dict[str, Any],
        key: str,
        *,
        sub: str = LOADER,
        role: Role = Role.WILAYAH_ADMIN,
        institution: str | None = None,
    ) -> dict[str, Any] | None:
        """The reply, or None when the item was loaded before under other circumstances: a
        unit opened by someone else (409), or a dated item loaded on an earlier day."""
        r = self.client(tenant, role, sub, institution).post(
            f"/v1/tenants/{tenant}{path}", json=body, headers={"Idempotency-Key": key}
        )
        if r.status_code == 409 and path == "/units":
            return None
        if r.status_code == 422 and _names(r, "Idempotency-Key"):
            return None
        if r.is_error:
            raise RuntimeError(f"demo: POST {path} answered {r.status_code}: {r.text}")
        reply: dict[str, Any] = r.json()
        return reply

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def _names(r: httpx.Response, field_name: str) -> bool:
    return any(e.get("field") == field_name for e in r.json().get("errors") or [])


def load_demo(settings: Settings, urls: dict[str, str], today: date | None = None) -> str:
    """Load the demo; `today`: the day its dated items count from (a reload on a later day
    leaves the ones loaded earlier as they are)."""
    loader = Loader(settings, urls["registry"])
    try:
        ids = _load_registry(loader, today or date.today())
    finally:
        loader.close()
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
        f"demo data: {len(UNITS)} councils, {len(INSTITUTIONS)} institutions (profiles, "
        f"officers, accreditations, licences), {len(POLICIES)} policies, {len(WORKERS)} "
        f"workers, {len(COMPLAINTS)} complaints in provinces 31, 34, 35"
    )


def _load_registry(loader: Loader, today: date) -> dict[str, str]:
    for kind, code, name in UNITS:
        loader.post(
            "35", "/units", {"kind": kind, "code": code, "name": name}, f"demo-unit-{kind}-{code}"
        )
    ids: dict[str, str] = {}
    for number, inst in enumerate(INSTITUTIONS, 1):
        reply = loader.post(
            inst.tenant, "/institutions", inst.registration(), f"demo-institution-{number}"
        )
        assert reply is not None  # registration carries no date: never loaded differently
        ids[inst.name] = reply["id"]
        _load_institution(loader, number, inst, reply["id"], today)
    _load_policies(loader, ids)
    return ids


def _load_institution(
    loader: Loader, number: int, inst: Institution, institution_id: str, today: date
) -> None:
    t, base, key = inst.tenant, f"/institutions/{institution_id}", f"demo-{number}"
    if inst.address:
        loader.post(
            t,
            f"{base}/profile",
            {
                "address": {"line": inst.address, "regency": inst.pdm},
                "capacity": inst.capacity,
                "services": list(inst.services),
                "contact": {
                    "phone": f"{AREA_CODES[inst.pdm]}-8{number:02d}{number * 37 % 1000:03d}1",
                    "email": f"aumsos{number}@mpks{t}.example.org",
                },
                "beneficiaries": {"period": BENEFICIARY_YEAR, "counts": inst.beneficiaries},
            },
            f"{key}-profile",
        )
    district = inst.unit or f"{inst.pdm}01"
    for serial, (role, officer) in enumerate(
        zip(("head", "finance_officer"), inst.officers, strict=False), 1
    ):
        loader.post(
            t,
            f"{base}/officers",
            {
                "role": role,
                "full_name": officer.full_name,
                "nik": fake_nik(district, officer.born, officer.female, number * 10 + serial),
                "term_start": TERM_START.isoformat(),
                "term_end": TERM_END.isoformat(),
                "reason": f"SK {_council(inst)} No. {number:02d}/KEP/III.0/D/2024",
                "phone": f"0812-3{number:03d}-{serial:02d}{born_code(officer)}",
            },
            f"{key}-officer-{role}",
        )
    if (acc := inst.accreditation) is not None:
        _load_accreditation(loader, number, inst, institution_id, acc, today)
    issuer = f"Dinas Sosial Provinsi {PROVINCES[t]}"
    loader.post(
        t,
        f"{base}/licences",
        {
            "kind": "registration",
            "number": f"460/{number:03d}/TD/{t}/2022",
            "issuer": issuer,
            "issued_on": "2022-03-01",
            "valid_until": "2027-02-28",
        },
        f"{key}-licence-registration",
    )
    ends_in = inst.operating_licence_days
    until = today + timedelta(days=ends_in) if ends_in is not None else date(2029, 6, 30)
    loader.post(
        t,
        f"{base}/licences",
        {
            "kind": "operating",
            "number": f"503/{number:03d}/IO/{t}/{until.year - 5}",
            "issuer": issuer,
            "issued_on": until.replace(year=until.year - 5).isoformat(),
            "valid_until": until.isoformat(),
        },
        f"{key}-licence-operating",
    )


def born_code(officer: Officer) -> str:
    return f"{officer.born.month:02d}{officer.born.day:02d}"


def _council(inst: Institution) -> str:
    return ("PDA" if inst.owner == "aisyiyah" else "PDM") + f" {inst.pdm}"


def _load_accreditation(
    loader: Loader,
    number: int,
    inst: Institution,
    institution_id: str,
    acc: Accreditation,
    today: date,
) -> None:
    s = acc.score
    body: dict[str, Any] = {
        "grade": acc.grade,
        "scores": {
            "programme": s + 2,
            "human_resources": s - 3,
            "management": s + 1,
            "facilities": s - 4,
            "service_results": s,
        },
        "regulation": "Permensos 8/2025" if acc.decided_on.year >= 2025 else "Permensos 3/2018",
        "decided_on": acc.decided_on.isoformat(),
    }
    if acc.grade != "not_accredited":
        month = ROMAN[acc.decided_on.month - 1]
        body["certificate_number"] = (
            f"{number:03d}/BAN-PS/LKS/{inst.tenant}/{month}/{acc.decided_on.year}"
        )
    if acc.expires_in_days is not None:
        body["valid_until"] = (today + timedelta(days=acc.expires_in_days)).isoformat()
    path = f"/institutions/{institution_id}/accreditation"
    loader.post(inst.tenant, path, body, f"demo-{number}-accreditation")
    if acc.revoked:
        loader.post(
            inst.tenant,
            f"{path}/revoke",
            {"reason": "Dicabut BAN-PS: laporan keuangan tidak dapat dipertanggungjawabkan"},
            f"demo-{number}-accreditation-revoke",
        )


# (key, level, proposer institution or council, title, what happens): every state a policy
# can be in, proposed and decided by different people.
POLICIES = [
    ("care", "institution", "LKSA Muhammadiyah Wiyung", "Standar pengasuhan anak", "approve"),
    (
        "care-2026",
        "institution",
        "LKSA Muhammadiyah Wiyung",
        "Standar pengasuhan anak (revisi 2026)",
        "supersede:care",
    ),
    ("visits", "institution", "PSKM Muhammadiyah Wiyung", "Jadwal kunjungan keluarga", None),
    ("zakat", "city", ("pdm", "3515"), "Penyaluran zakat produktif Sidoarjo", "revision"),
    ("fees", "branch", ("pcm", "357813"), "Iuran wajib anggota cabang", "reject"),
    (
        "outreach",
        "city",
        ("pdm", "3573"),
        "Penjangkauan lansia terlantar Kota Malang",
        "revise-approve",
    ),
]


def _load_policies(loader: Loader, ids: dict[str, str]) -> None:
    policy_ids: dict[str, str] = {}
    for key, level, by, title, then in POLICIES:
        body: dict[str, Any] = {
            "level": level,
            "rule": RULE,
            "title": title,
            "summary": f"{title}: disusun bersama pengurus dan pendamping, berlaku satu periode.",
        }
        # An institution's own policy comes from its staff, a council's from the province.
        staff_of = ids[by] if isinstance(by, str) else None
        if staff_of:
            body["institution_id"] = staff_of
        else:
            body["unit_kind"], body["unit"] = by
        if then and then.startswith("supersede:"):
            body["supersedes"] = policy_ids[then.removeprefix("supersede:")]
        reply = loader.post(
            "35",
            "/policies",
            body,
            f"demo-policy-{key}",
            sub=STAFF if staff_of else LOADER,
            role=Role.INSTITUTION_STAFF if staff_of else Role.WILAYAH_ADMIN,
            institution=staff_of,
        )
        assert reply is not None  # a proposal carries no date: never loaded differently
        policy_id = policy_ids[key] = reply["id"]
        decide = _Decisions(loader, policy_id, f"demo-policy-{key}")
        if then == "approve" or (then or "").startswith("supersede:"):
            decide("approve", "Disetujui dalam rapat pimpinan.")
        elif then == "reject":
            decide("reject", "Bertentangan dengan keputusan musyawarah wilayah.")
        elif then in {"revision", "revise-approve"}:
            decide("request-revision", "Lengkapi sasaran dan anggarannya.")
        if then == "revise-approve":
            loader.post(
                "35",
                f"/policies/{policy_id}/revise",
                {
                    "rule": RULE,
                    "title": title,
                    "summary": f"{body['summary']} Sasaran: 120 lansia; anggaran terlampir.",
                },
                f"demo-policy-{key}-revise",
            )
            decide("approve", "Disetujui setelah perbaikan.", step="approve-revised")


class _Decisions:
    """A council's decisions on one policy, taken by a reviewer, never by its proposer."""

    def __init__(self, loader: Loader, policy_id: str, key: str) -> None:
        self.loader, self.policy_id, self.key = loader, policy_id, key

    def __call__(self, action: str, remarks: str, step: str | None = None) -> None:
        self.loader.post(
            "35",
            f"/policies/{self.policy_id}/{action}",
            {"remarks": remarks},
            f"{self.key}-{step or action}",
            sub=REVIEWER,
        )


def _client(settings: Settings, url: str, tenant: str, role: Role) -> httpx.Client:
    token = mint_dev_token(settings, sub=LOADER, tenant=tenant, roles=[role])
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _wait_for_directory(client: httpx.Client, tenant: str, institution_id: str) -> None:
    """Cases learns of institutions from the registry's events: wait until it has."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entries = client.get(f"/v1/tenants/{tenant}/directory/institutions").json()
        if any(e["institution_id"] == institution_id for e in entries):
            return
        time.sleep(0.2)
    raise RuntimeError(f"cases did not learn of institution {institution_id} within 30s")
