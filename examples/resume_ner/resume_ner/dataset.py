"""A seeded generator of templated resumes with character-span entity annotations.

Every resume is a record ``{"id": str, "text": str, "entities": [{"start", "end", "label"}]}``;
``text[start:end]`` is exactly the entity's text and the entities are sorted by ``start`` and do
not overlap. The labels are the eight entity types of ``config/data/*.yaml``
(:data:`ENTITY_TYPES`). Offsets count Unicode code points (Python string indices).

The generator uses only the standard library and ``random.Random`` methods whose output is the
same on every Python version from 3.10 on (``getrandbits``, ``random``, ``randrange``, ``choice``,
``sample`` and ``shuffle`` on sequences); nothing iterates a set or depends on hashing. The same
``n`` and ``seed`` therefore give the same bytes everywhere, and record ``i`` does not depend on
``n``: a smaller dataset is a prefix of a larger one with the same seed.

Regenerate a dataset folder from the example project folder (``examples/resume_ner``)::

    python -m resume_ner.dataset --out dataset_tiny --n 80 --seed 0
    python -m resume_ner.dataset --out dataset --n 600 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_FILE",
    "ENTITY_TYPES",
    "GENERATOR_VERSION",
    "generate_resumes",
    "label_counts",
    "load_dataset",
    "main",
    "split_dataset",
    "write_dataset",
]

ENTITY_TYPES: tuple[str, ...] = (
    "NAME",
    "EMAIL",
    "PHONE",
    "LOCATION",
    "SKILL",
    "DEGREE",
    "COMPANY",
    "DESIGNATION",
)
"""The entity labels, in the order of the data config's ``schema.entity_types``."""

DATA_FILE = "resumes.json"
"""The name of the data file inside a dataset folder."""

GENERATOR_VERSION = 1
"""Bumped whenever a change to this module changes the generated data."""

Record = dict[str, Any]

# ---- vocabulary ---------------------------------------------------------------------------------
# Tuples, never sets: iteration order is part of the output.

_FIRST_NAMES: tuple[str, ...] = (
    "Aisha", "José", "Zoë", "Chloé", "Björn", "Priya", "Wei", "Kwame", "Fatima", "Liam",
    "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Arjun", "Mei", "Hiroshi", "Yusuf", "Elena",
    "Lucas", "Amara", "Dmitri", "Ingrid", "Carlos", "Hannah", "Omar", "Leila", "Ravi", "Grace",
    "Daniel", "Sarah", "Michael", "Ananya", "Thomas", "Nadia", "Samuel", "Julia", "Kenji", "Maya",
    "Jordan", "Austin", "Sydney", "Dallas", "Florence", "Savannah", "Madison", "Chelsea",
)  # fmt: skip
_LAST_NAMES: tuple[str, ...] = (
    "Smith", "García", "Müller", "Nguyen", "O'Brien", "Kowalski", "Okafor", "Sharma", "Chen",
    "Kim", "Silva", "Haddad", "Rossi", "Dubois", "Jensen", "Tanaka", "Ivanova", "Patel", "Brown",
    "Williams", "Johansson", "Mensah", "Novak", "Fernandes", "Cohen", "Yilmaz", "Murphy", "Singh",
    "Lopez", "Schmidt", "Andersen", "Khan", "Wright", "Bauer", "Moreau", "Costa", "Ahmed", "Park",
    "Jackson", "Lincoln", "Washington", "Houston", "London", "Morgan", "Chester", "Carter",
)  # fmt: skip
_ASCII = str.maketrans({
    "é": "e", "è": "e", "ë": "e", "á": "a", "ä": "a", "ã": "a", "ó": "o", "ö": "o", "ø": "o",
    "í": "i", "ï": "i", "ü": "u", "ú": "u", "ñ": "n", "ç": "c", "'": "", "-": "",
})  # fmt: skip

# (city, region or state, country)
_PLACES: tuple[tuple[str, str, str], ...] = (
    ("Austin", "TX", "USA"), ("Houston", "TX", "USA"), ("Dallas", "TX", "USA"),
    ("Seattle", "WA", "USA"), ("Boston", "MA", "USA"), ("Denver", "CO", "USA"),
    ("Chicago", "IL", "USA"), ("New York", "NY", "USA"), ("San Francisco", "CA", "USA"),
    ("Lincoln", "NE", "USA"), ("Savannah", "GA", "USA"), ("Madison", "WI", "USA"),
    ("Atlanta", "GA", "USA"), ("Portland", "OR", "USA"), ("Toronto", "ON", "Canada"),
    ("Vancouver", "BC", "Canada"), ("Montréal", "QC", "Canada"), ("London", "England", "UK"),
    ("Manchester", "England", "UK"), ("Edinburgh", "Scotland", "UK"), ("Dublin", "", "Ireland"),
    ("Berlin", "", "Germany"), ("Munich", "Bavaria", "Germany"), ("Paris", "", "France"),
    ("Lyon", "", "France"), ("Amsterdam", "", "Netherlands"), ("Stockholm", "", "Sweden"),
    ("Madrid", "", "Spain"), ("Lisbon", "", "Portugal"), ("Milan", "", "Italy"),
    ("Florence", "", "Italy"), ("Warsaw", "", "Poland"), ("Bengaluru", "Karnataka", "India"),
    ("Mumbai", "Maharashtra", "India"), ("Hyderabad", "Telangana", "India"),
    ("Pune", "Maharashtra", "India"), ("Singapore", "", "Singapore"), ("Tokyo", "", "Japan"),
    ("Seoul", "", "South Korea"), ("Sydney", "NSW", "Australia"),
    ("Melbourne", "VIC", "Australia"), ("Auckland", "", "New Zealand"), ("Lagos", "", "Nigeria"),
    ("Nairobi", "", "Kenya"), ("Accra", "", "Ghana"), ("Cairo", "", "Egypt"),
    ("Dubai", "", "UAE"), ("São Paulo", "SP", "Brazil"), ("Mexico City", "", "Mexico"),
    ("Buenos Aires", "", "Argentina"),
)  # fmt: skip

_BRANDS: tuple[str, ...] = (
    "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Tailspin", "Woodgrove", "Litware",
    "Adatum", "Proseware", "Wingtip", "Bluepeak", "Ironclad", "Silverline", "Brightpath",
    "Redwood", "Nimbus", "Vertex", "Lumina", "Cobalt", "Orbital", "Pinecrest", "Stellar",
    "Harbor", "Quantia", "Zenith", "Keystone", "Evergreen", "Helix", "Crescent",
)  # fmt: skip
_COMPANY_SUFFIXES: tuple[str, ...] = (
    "Technologies", "Labs", "Analytics", "Systems", "Solutions", "Group", "Consulting",
    "Health", "Bank", "Logistics", "Software", "Media", "Energy", "Capital", "Partners",
    "Robotics", "Insurance", "Retail",
)  # fmt: skip
_LEGAL_FORMS: tuple[str, ...] = ("Inc", "Ltd", "LLC", "GmbH", "Corp", "Pvt Ltd", "AG", "SA")

_LEGAL_WORDS: tuple[str, ...] = ("Inc", "Ltd", "LLC", "GmbH", "Corp", "Pvt", "AG", "SA", "&")
_CALLING_CODES: dict[str, str] = {
    "Ireland": "353", "Germany": "49", "France": "33", "Netherlands": "31", "Sweden": "46",
    "Spain": "34", "Portugal": "351", "Italy": "39", "Poland": "48", "Singapore": "65",
    "Japan": "81", "South Korea": "82", "New Zealand": "64", "Nigeria": "234", "Kenya": "254",
    "Ghana": "233", "Egypt": "20", "UAE": "971", "Brazil": "55", "Mexico": "52",
    "Argentina": "54",
}  # fmt: skip

_SENIORITY: tuple[str, ...] = ("Junior", "Senior", "Lead", "Principal", "Staff", "Associate")

# track -> (roles, skills, degree fields)
_TRACKS: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (  # software
        ("Software Engineer", "Backend Developer", "Frontend Developer", "Python Developer",
         "Java Developer", "Full Stack Developer", "DevOps Engineer", "QA Engineer",
         "Cloud Architect", "Solutions Architect", "Site Reliability Engineer",
         "Mobile Developer", "Engineering Manager"),
        ("Python", "Java", "JavaScript", "TypeScript", "React", "Node.js", "Go", "Rust", "C++",
         "C#", "Docker", "Kubernetes", "AWS", "Azure", "GCP", "Terraform", "Jenkins", "CI/CD",
         "REST APIs", "GraphQL", "PostgreSQL", "MySQL", "MongoDB", "Git", "Linux", "Redis",
         "Microservices", "Django", "Spring Boot", "Agile"),
        ("Computer Science", "Software Engineering", "Information Technology",
         "Computer Engineering", "Mathematics"),
    ),
    (  # data
        ("Data Scientist", "Data Analyst", "Data Engineer", "Machine Learning Engineer",
         "Research Scientist", "BI Developer", "Analytics Manager", "NLP Engineer",
         "Statistician"),
        ("Python", "R", "SQL", "Machine Learning", "Deep Learning", "NLP", "Computer Vision",
         "TensorFlow", "PyTorch", "scikit-learn", "Pandas", "NumPy", "Spark", "Hadoop",
         "Kafka", "Airflow", "Tableau", "Power BI", "Excel", "Statistics", "Data Analysis",
         "A/B Testing", "Snowflake", "dbt", "Data Visualization"),
        ("Data Science", "Statistics", "Computer Science", "Applied Mathematics", "Physics",
         "Economics"),
    ),
    (  # business
        ("Product Manager", "Project Manager", "Business Analyst", "Marketing Manager",
         "Sales Executive", "Account Manager", "HR Manager", "Recruiter", "Financial Analyst",
         "Accountant", "Operations Manager", "Management Consultant", "Customer Success Manager"),
        ("Project Management", "Agile", "Scrum", "Excel", "Salesforce", "SAP", "SEO",
         "Google Analytics", "Financial Modeling", "Budgeting", "Accounting", "Negotiation",
         "Public Speaking", "Leadership", "Communication", "Stakeholder Management",
         "Recruiting", "Customer Service", "Market Research", "Jira", "Power BI"),
        ("Business Administration", "Finance", "Marketing", "Economics", "Accounting",
         "Human Resource Management"),
    ),
    (  # design and content
        ("UX Designer", "UI Designer", "Graphic Designer", "Product Designer", "Content Writer",
         "Copywriter", "Art Director", "Video Editor", "Social Media Manager"),
        ("Figma", "Sketch", "Adobe Illustrator", "Photoshop", "InDesign", "After Effects",
         "Premiere Pro", "User Research", "Wireframing", "Prototyping", "Typography", "HTML",
         "CSS", "Copywriting", "SEO", "WordPress", "Storytelling"),
        ("Graphic Design", "Fine Arts", "Communication Design", "Journalism",
         "Human-Computer Interaction", "English Literature"),
    ),
    (  # engineering
        ("Mechanical Engineer", "Civil Engineer", "Electrical Engineer", "Process Engineer",
         "Quality Engineer", "Site Engineer", "Embedded Systems Engineer", "Network Administrator",
         "Maintenance Technician", "Design Engineer"),
        ("AutoCAD", "SolidWorks", "MATLAB", "Simulink", "Embedded C", "PLC Programming",
         "Six Sigma", "Lean Manufacturing", "Networking", "Cybersecurity", "CATIA", "ANSYS",
         "Revit", "Project Management", "Root Cause Analysis", "LabVIEW"),
        ("Mechanical Engineering", "Civil Engineering", "Electrical Engineering",
         "Electronics and Communication", "Industrial Engineering", "Chemical Engineering"),
    ),
)  # fmt: skip

# (long form, short forms, kind) of degree levels; "{field}" is the field of study. Kind "tech"
# goes only with technical fields, "arts" only with the others, "any" with both.
_DEGREES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Bachelor of Science in {field}", ("B.Sc. in {field}", "BSc {field}", "B.S. {field}"), "any"),
    ("Bachelor of Arts in {field}", ("B.A. in {field}", "BA {field}"), "arts"),
    ("Bachelor of Engineering in {field}", ("B.E. in {field}", "B.Tech in {field}"), "tech"),
    ("Master of Science in {field}", ("M.Sc. in {field}", "MSc {field}", "M.S. in {field}"), "any"),
    ("Master of Engineering in {field}", ("M.Tech in {field}", "M.Eng. {field}"), "tech"),
    ("Doctor of Philosophy in {field}", ("Ph.D. in {field}", "PhD {field}"), "any"),
)  # fmt: skip
_TECHNICAL_FIELDS: tuple[str, ...] = (
    "Computer Science", "Information Technology", "Electronics and Communication",
)  # fmt: skip
_MBA: tuple[str, ...] = ("Master of Business Administration", "MBA", "Executive MBA")

_MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_SPOKEN: tuple[str, ...] = (
    "English", "Spanish", "French", "German", "Hindi", "Mandarin", "Portuguese", "Arabic",
    "Japanese", "Swahili", "Italian", "Polish",
)  # fmt: skip
_INTERESTS: tuple[str, ...] = (
    "hiking", "chess", "photography", "running", "cooking", "volunteering", "reading",
    "cycling", "painting", "football", "travel", "music",
)  # fmt: skip
_MAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "outlook.com", "yahoo.com", "proton.me", "hotmail.com", "mail.com", "icloud.com",
)  # fmt: skip

# ---- building text with spans -------------------------------------------------------------------


class _Builder:
    """Accumulates text pieces and records a span for every piece that is an entity."""

    def __init__(self, lower: bool = False) -> None:
        self._lower = lower
        self._parts: list[str] = []
        self._length = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str, label: str | None = None) -> None:
        """Append ``text``; when ``label`` is given the whole piece is one entity."""
        if self._lower:  # per piece, so the offsets are those of the lowered text
            text = text.lower()
        if label is not None:
            if label not in ENTITY_TYPES or not text or text != text.strip():
                raise RuntimeError(f"generator bug: bad entity piece {text!r} ({label})")
            self.entities.append(
                {"start": self._length, "end": self._length + len(text), "label": label}
            )
        self._parts.append(text)
        self._length += len(text)

    def text(self) -> str:
        """The text built so far."""
        return "".join(self._parts)


Slot = tuple[str, str | None] | Callable[[_Builder], None]
"""A template value: ``(text, label or None)``, or a function that writes itself."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(b: _Builder, template: str, slots: dict[str, Slot]) -> None:
    """Write ``template`` to ``b``, replacing each ``{key}`` by ``slots[key]``."""
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        b.add(template[pos : match.start()])
        slot = slots[match.group(1)]
        if callable(slot):
            slot(b)
        else:
            b.add(slot[0], slot[1])
        pos = match.end()
    b.add(template[pos:])


def _entity_list(
    items: Sequence[str], label: str | None, seps: tuple[str, str]
) -> Callable[[_Builder], None]:
    """A slot writing ``items`` joined by ``seps[0]``, the last one by ``seps[1]``."""

    def write(b: _Builder) -> None:
        for i, item in enumerate(items):
            if i:
                b.add(seps[1] if i == len(items) - 1 else seps[0])
            b.add(item, label)

    return write


def _article(phrase: str) -> str:
    """``a`` or ``an`` for ``phrase`` (``an MBA``, ``an HR Manager``, ``a UX Designer``)."""
    acronym = len(phrase) > 1 and not phrase[1].islower()
    if acronym:
        return "an" if phrase[0] in "AEFHILMNORSX" else "a"
    return "an" if phrase[0].lower() in "aeiou" else "a"


_ONSETS: tuple[str, ...] = (
    "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr", "st",
    "ch", "sh", "kr", "pl", "gr", "th", "",
)  # fmt: skip
_VOWELS: tuple[str, ...] = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "io", "y")
_CODAS: tuple[str, ...] = ("", "", "", "n", "r", "l", "s", "x", "m", "nd", "rt")


def _coined(rng: random.Random, max_syllables: int) -> str:
    """A capitalised made-up word of 2 to ``max_syllables`` syllables (``Travinel``)."""
    count = rng.randrange(2, max_syllables + 1)
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(count))
    return (word + rng.choice(_CODAS)).capitalize()


# ---- one resume ---------------------------------------------------------------------------------


class _Person:
    """The facts of one resume, drawn from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.first = rng.choice(_FIRST_NAMES) if rng.random() < 0.85 else _coined(rng, 2)
        self.last = self.surname()
        initial = f" {rng.choice('ABCDEHJKLMPRST')}." if rng.random() < 0.12 else ""
        self.name = f"{self.first}{initial} {self.last}"
        self.place = rng.choice(_PLACES)
        self.location = self.pick_location(self.place)
        roles, skills, fields = rng.choice(_TRACKS)
        self.roles = roles
        self.skill_pool = skills
        self.skills = rng.sample(skills, rng.randrange(1, 4))
        self.title = self.pick_title(roles)
        self.company = self.new_company()
        self.phone = self._phone()
        self.email = self._email()
        self.degree = self._degree(fields)
        self.grad_year = rng.randrange(1998, 2024)
        self.years = max(1, min(2025 - self.grad_year - rng.randrange(0, 3), 25))
        self.university = self._university()

    def pick_location(self, place: tuple[str, str, str]) -> str:
        city, region, country = place
        r = self.rng.random()
        if r < 0.35 or (not region and r < 0.6):
            return city
        if region and r < 0.75:
            return f"{city}, {region}"
        return f"{city}, {country}" if city != country else city

    def pick_title(self, roles: Sequence[str]) -> str:
        role = self.rng.choice(roles)
        if self.rng.random() < 0.35 and not role.endswith("Manager"):
            return f"{self.rng.choice(_SENIORITY)} {role}"
        return role

    def surname(self) -> str:
        """A family name: mostly a common one, sometimes a coined one."""
        if self.rng.random() < 0.7:
            return self.rng.choice(_LAST_NAMES)
        return _coined(self.rng, 3)

    def brand(self) -> str:
        """A brand name: a known fictional one or a coined one."""
        if self.rng.random() < 0.6:
            return self.rng.choice(_BRANDS)
        return _coined(self.rng, 3)

    def new_company(self) -> str:
        """A company name; a new draw each call."""
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            name = f"{self.brand()} {rng.choice(_COMPANY_SUFFIXES)}"
        elif r < 0.55:
            name = self.brand()
        elif r < 0.7:
            name = f"{rng.choice(_PLACES)[0]} {rng.choice(_COMPANY_SUFFIXES)}"
        elif r < 0.82:
            name = f"{self.surname()} & {self.surname()}"
        else:
            name = f"{self.surname()} {rng.choice(_COMPANY_SUFFIXES)}"
        if rng.random() < 0.25 and "&" not in name:
            name = f"{name} {rng.choice(_LEGAL_FORMS)}"
        return name

    def _phone(self) -> str:
        rng = self.rng

        def digits(k: int) -> str:
            return "".join(str(rng.randrange(10)) for _ in range(k))

        country = self.place[2]
        if country in ("USA", "Canada"):
            area, mid, end = str(rng.randrange(201, 990)), digits(3), digits(4)
            return rng.choice((
                f"+1 ({area}) {mid}-{end}", f"({area}) {mid}-{end}", f"{area}-{mid}-{end}",
                f"{area}.{mid}.{end}", f"+1 {area} {mid} {end}",
            ))  # fmt: skip
        if country == "UK":
            return rng.choice((f"+44 7{digits(3)} {digits(6)}", f"07{digits(3)} {digits(6)}"))
        if country == "India":
            return rng.choice((f"+91 9{digits(4)} {digits(5)}", f"+91-9{digits(9)}"))
        if country == "Australia":
            return f"+61 4{digits(2)} {digits(3)} {digits(3)}"
        code = _CALLING_CODES[country]
        return rng.choice((f"+{code} {digits(3)} {digits(3)} {digits(3)}", f"+{code}{digits(9)}"))

    def _email(self) -> str:
        rng = self.rng
        first = self.first.lower().translate(_ASCII)
        last = self.last.lower().translate(_ASCII)
        local = rng.choice((
            f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}",
            f"{last}.{first}", f"{first}{rng.randrange(1, 100)}", f"{first[0]}.{last}",
        ))  # fmt: skip
        if rng.random() < 0.2:
            local += str(rng.randrange(1970, 2006))
        if rng.random() < 0.2:
            words = [w for w in self.company.split() if w not in _LEGAL_WORDS]
            domain = re.sub(r"[^a-z]", "", "".join(words).lower().translate(_ASCII)) + ".com"
        else:
            domain = rng.choice(_MAIL_DOMAINS)
        return f"{local}@{domain}"

    def _degree(self, fields: Sequence[str]) -> str:
        rng = self.rng
        if rng.random() < 0.1:
            return rng.choice(_MBA)
        field = rng.choice(fields)
        kind = "tech" if "Engineering" in field or field in _TECHNICAL_FIELDS else "arts"
        long, shorts, _ = rng.choice([d for d in _DEGREES if d[2] in ("any", kind)])
        pattern = long if rng.random() < 0.45 else rng.choice(shorts)
        return pattern.format(field=field)

    def _university(self) -> str:
        rng = self.rng
        city = rng.choice(_PLACES)[0]
        return rng.choice((
            f"University of {city}", f"{city} State University", f"{city} Institute of Technology",
            f"{self.surname()} College", f"{self.brand()} University",
        ))  # fmt: skip

    def date_range(self, end_now: bool) -> str:
        """A job's dates, e.g. ``Mar 2019 – Present`` or ``2016-2019``."""
        rng = self.rng
        start = rng.randrange(2005, 2023)
        end = "Present" if end_now else str(rng.randrange(start + 1, 2025))
        style = rng.randrange(3)
        if style == 0:
            return f"{start} - {end}"
        if style == 1:
            month = rng.choice(_MONTHS)[:3]
            return f"{month} {start} – {end if end_now else rng.choice(_MONTHS)[:3] + ' ' + end}"
        return f"{rng.randrange(1, 13):02d}/{start} to {end}"

    def skill_slot(self, k: int | None = None, prose: bool = False) -> Callable[[_Builder], None]:
        """The person's skills (or ``k`` of them) as a list slot."""
        items = self.skills if k is None else self.rng.sample(self.skills, min(k, len(self.skills)))
        if self.rng.random() < 0.12:
            items = [s.lower() for s in items]
        if prose:
            return _entity_list(items, "SKILL", (", ", self.rng.choice((" and ", ", and "))))
        sep = self.rng.choice((", ", ", ", " · ", " | ", "; ", " / "))
        return _entity_list(items, "SKILL", (sep, sep))

    def slots(self) -> dict[str, Slot]:
        """The template slots of this person."""
        title_prose = self.title if self.rng.random() < 0.6 else self.title.lower()
        article = _article(self.title)
        return {
            "name": (self.name, "NAME"),
            "first": (self.first, None),
            "email": (self.email, "EMAIL"),
            "phone": (self.phone, "PHONE"),
            "location": (self.location, "LOCATION"),
            "title": (self.title, "DESIGNATION"),
            "title_prose": (title_prose, "DESIGNATION"),
            "a": (article, None),
            "company": (self.company, "COMPANY"),
            "degree": (self.degree, "DEGREE"),
            "university": (self.university, None),
            "year": (str(self.grad_year), None),
            "years": ("1 year" if self.years == 1 else f"{self.years} years", None),
        }


_BULLETS: tuple[str, ...] = (
    "Built and maintained services using {skill} and {skill2}.",
    "Led a team of {k} people across {k2} projects.",
    "Reduced operating costs by {p}% in the first year.",
    "Introduced {skill} to the team and trained {k} colleagues.",
    "Improved customer satisfaction scores by {p}%.",
    "Worked closely with the {dept} team on quarterly planning.",
    "Automated weekly reporting with {skill}.",
    "Managed a budget of ${k}00K.",
    "Reported to the {boss}.",
    "Delivered projects for clients such as {client} and {client2}.",
    "Partnered with {client} on a {skill} migration.",
    "Mentored {k} junior colleagues.",
)
_DEPTS: tuple[str, ...] = ("sales", "finance", "product", "operations", "legal", "support")


def _bullet(p: _Person) -> tuple[str, dict[str, Slot]]:
    rng = p.rng
    skill, skill2 = rng.sample(p.skill_pool, 2)
    slots: dict[str, Slot] = {
        "skill": (skill, "SKILL"),
        "skill2": (skill2, "SKILL"),
        "k": (str(rng.randrange(2, 15)), None),
        "k2": (str(rng.randrange(2, 9)), None),
        "p": (str(rng.randrange(5, 60)), None),
        "dept": (rng.choice(_DEPTS), None),
        # not the candidate's own title or employers: plain text
        "boss": (p.pick_title(p.roles), None),
        "client": (p.new_company(), None),
        "client2": (p.new_company(), None),
    }
    return rng.choice(_BULLETS), slots


def _heading(rng: random.Random, names: tuple[str, ...]) -> str:
    name = rng.choice(names)
    return rng.choice((name.upper(), name, f"{name}:", f"== {name} =="))


def _extras(b: _Builder, p: _Person) -> None:
    """Unannotated lines: spoken languages, interests, a referee.

    Only the candidate's own details are entities, so a referee's name, job title and employer
    are plain text (the ambiguity a model has to learn from context).
    """
    rng = p.rng
    r = rng.random()
    if r < 0.25:
        langs = rng.sample(_SPOKEN, rng.randrange(1, 3))
        b.add(f"\nLanguages: {', '.join(langs)}")
    elif r < 0.45:
        b.add(f"\nInterests: {', '.join(rng.sample(_INTERESTS, rng.randrange(2, 4)))}")
    elif r < 0.6:
        honorific = rng.choice(("Dr.", "Ms.", "Mr.", "Prof."))
        referee = f"{rng.choice(_FIRST_NAMES)} {p.surname()}"
        b.add(f"\nReferee: {honorific} {referee}, {p.pick_title(p.roles)} at {p.new_company()}")
    elif r < 0.7:
        b.add("\nReferences available upon request.")


def _layout_sections(b: _Builder, p: _Person) -> None:
    """Header, summary, experience, education and skills sections."""
    rng = p.rng
    s = p.slots()
    if rng.random() < 0.15:
        s["name"] = (p.name.upper(), "NAME")
    sep = rng.choice((" | ", " · ", " • ", "\n"))
    header = "{name}\n{title}" + sep + "{location}" if rng.random() < 0.35 else "{name}\n{location}"
    _fill(b, header + "\n{email}" + sep + "{phone}\n", s)
    if rng.random() < 0.2:
        b.add("\n" + _heading(rng, ("Summary", "Profile", "About Me")) + "\n")
        _fill(b, rng.choice(_SUMMARIES), s)
        b.add("\n")
    b.add("\n" + _heading(rng, ("Experience", "Work History", "Employment")) + "\n")
    _fill(b, rng.choice(_JOB_LINES) + "\n", {**s, "dates": (p.date_range(True), None)})
    if rng.random() < 0.4:
        template, slots = _bullet(p)
        _fill(b, "- " + template + "\n", slots)
    if rng.random() < 0.25:
        old = {
            **s,
            "title": (p.pick_title(p.roles), "DESIGNATION"),
            "company": (p.new_company(), "COMPANY"),
            "location": (p.pick_location(rng.choice(_PLACES)), "LOCATION"),
            "dates": (p.date_range(False), None),
        }
        _fill(b, rng.choice(_JOB_LINES) + "\n", old)
    b.add("\n" + _heading(rng, ("Education", "Academic Background")) + "\n")
    _fill(b, rng.choice(("{degree}, {university}, {year}", "{degree} - {university} ({year})")), s)
    b.add("\n\n" + _heading(rng, ("Skills", "Technical Skills", "Core Competencies")) + "\n")
    p.skill_slot()(b)
    _extras(b, p)


_SUMMARIES: tuple[str, ...] = (
    "{title} with {years} of experience, currently at {company}.",
    "Results-driven {title_prose} based in {location}.",
    "Experienced {title_prose} who enjoys solving hard problems.",
    "I have worked as {a} {title_prose} for {years}.",
)
_JOB_LINES: tuple[str, ...] = (
    "{title}, {company} ({dates})",
    "{title} at {company}, {location} | {dates}",
    "{company} - {title}\n{dates}",
    "{dates}: {title}, {company}",
    "{title} — {company}, {location}, {dates}",
)


def _layout_fields(b: _Builder, p: _Person) -> None:
    """``Key: value`` lines in a shuffled order."""
    rng = p.rng
    s = p.slots()
    s["skills"] = p.skill_slot()
    lines = [
        rng.choice(("Name: {name}", "Full name: {name}", "Candidate: {name}")),
        rng.choice(("Email: {email}", "E-mail: {email}", "Mail: {email}")),
        rng.choice(("Phone: {phone}", "Mobile: {phone}", "Tel: {phone}", "Contact: {phone}")),
        rng.choice(("Location: {location}", "Address: {location}", "City: {location}")),
        rng.choice(("Current role: {title}", "Position: {title}", "Designation: {title}")),
        rng.choice(("Employer: {company}", "Company: {company}", "Organisation: {company}")),
        rng.choice(("Education: {degree} ({university}, {year})", "Degree: {degree}")),
        rng.choice(("Skills: {skills}", "Key skills: {skills}", "Expertise: {skills}")),
    ]
    # an employer, a degree or a phone number is missing now and then
    for line, chance in ((5, 0.2), (6, 0.25), (2, 0.1)):
        if rng.random() < chance:
            del lines[line]
    head, rest = lines[:1], lines[1:]
    rng.shuffle(rest)
    _fill(b, "\n".join(head + rest), s)
    _extras(b, p)


_PROSE: tuple[tuple[str, ...], ...] = (
    (
        "My name is {name} and I am {a} {title_prose} at {company}.",
        "{name}, {a} {title_prose} based in {location} with {years} of experience.",
        "I'm {name}, {a} {title_prose} working for {company} in {location}.",
    ),
    (
        "I live in {location} and currently work for {company}.",
        "Since {year} I have been with {company}, where I lead projects end to end.",
        "Currently based in {location}.",
    ),
    (
        "I hold {a_degree} {degree} from {university}.",
        "I graduated from {university} in {year} with {a_degree} {degree}.",
        "Education: {degree}, {university}.",
    ),
    (
        "My core skills include {skills}.",
        "I am skilled in {skills}.",
        "Day to day I work with {skills}.",
    ),
    (
        "Contact me at {email} or {phone}.",
        "Reach me by email ({email}) or phone ({phone}).",
        "Email: {email} / Phone: {phone}",
    ),
)
_CLIENT_SENTENCES: tuple[str, ...] = (
    "Clients have included {client}.",
    "I recently finished a project for {client}.",
    "My last project was for {client}, a {dept} client.",
)


def _layout_prose(b: _Builder, p: _Person) -> None:
    """A short first- or third-person paragraph."""
    rng = p.rng
    s = p.slots()
    s["skills"] = p.skill_slot(prose=True)
    s["a_degree"] = (_article(p.degree), None)
    sentences = [rng.choice(group) for group in _PROSE]
    if rng.random() < 0.5:
        del sentences[1]
    if rng.random() < 0.25:  # a client of the candidate's employer is not an entity
        s["client"] = (p.new_company(), None)
        s["dept"] = (rng.choice(_DEPTS), None)
        sentences.insert(-1, rng.choice(_CLIENT_SENTENCES))
    if rng.random() < 0.25:
        prev_title = p.pick_title(p.roles)
        prev: dict[str, Slot] = {
            "k": (rng.choice(("one year", "two years", "three years", "four years")), None),
            "company": (p.new_company(), "COMPANY"),
            "a": (_article(prev_title), None),
            "title": (prev_title, "DESIGNATION"),
        }
        _fill(b, " ".join(sentences[:2]) + " ", s)
        _fill(b, "Before that, I spent {k} at {company} as {a} {title}.", prev)
        _fill(b, " " + " ".join(sentences[2:]), s)
    else:
        _fill(b, " ".join(sentences), s)


def _layout_letter(b: _Builder, p: _Person) -> None:
    """A cover letter applying for a position at another company."""
    rng = p.rng
    s = p.slots()
    target_title = p.pick_title(p.roles)
    s["target_title"] = (target_title, "DESIGNATION")
    s["target_company"] = (p.new_company(), "COMPANY")
    s["skills"] = p.skill_slot(k=rng.randrange(1, 4), prose=True)
    _fill(
        b,
        rng.choice(("Dear Hiring Manager,\n", "To the recruiting team,\n", "Hello,\n"))
        + "I am writing to apply for the {target_title} position at {target_company}. "
        + rng.choice(
            (
                "For the past {years} I have worked as {a} {title_prose} at {company}, ",
                "I am currently {a} {title_prose} at {company} in {location}, ",
            )
        )
        + "where I use {skills} every day. I hold {a_degree} {degree}.\n"
        + rng.choice(("Sincerely,\n", "Best regards,\n", "Kind regards,\n"))
        + "{name}\n{phone} | {email}",
        {**s, "a_degree": (_article(p.degree), None)},
    )


def _layout_compact(b: _Builder, p: _Person) -> None:
    """A dense header line and short lines, as pasted from a job site."""
    rng = p.rng
    s = p.slots()
    s["skills"] = p.skill_slot()
    s["prev_title"] = (p.pick_title(p.roles), "DESIGNATION")
    s["prev_company"] = (p.new_company(), "COMPANY")
    sep = rng.choice((" | ", " · ", " - ", ", "))
    head = sep.join(("{name}", "{email}", "{phone}", "{location}"))
    _fill(
        b,
        head
        + "\n{title} @ {company} (since {year})"
        + rng.choice(("\nPrev: {prev_title} @ {prev_company}", ""))
        + rng.choice(("\n{degree}, {university}", "\n{degree}", ""))
        + "\n"
        + rng.choice(("Skills: ", "Stack: ", "Tools: "))
        + "{skills}",
        s,
    )


_LAYOUTS: tuple[tuple[float, Callable[[_Builder, _Person], None]], ...] = (
    (0.3, _layout_sections),
    (0.5, _layout_fields),
    (0.72, _layout_prose),
    (0.84, _layout_letter),
    (1.0, _layout_compact),
)


def _resume(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    """One resume's text and entities."""
    person = _Person(rng)
    r = rng.random()
    layout = next(fn for bound, fn in _LAYOUTS if r < bound)
    b = _Builder(lower=rng.random() < 0.08)  # pasted from a form that lowercased everything
    layout(b, person)
    return b.text(), b.entities


# ---- public API ---------------------------------------------------------------------------------


def generate_resumes(n: int, seed: int) -> list[Record]:
    """``n`` annotated resumes; the same ``(n, seed)`` gives the same records everywhere.

    Record ``i`` depends only on ``seed`` and ``i``, so ``generate_resumes(m, seed)`` is a prefix
    of ``generate_resumes(n, seed)`` for ``m <= n``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    master = random.Random(seed)
    records: list[Record] = []
    for i in range(n):
        text, entities = _resume(random.Random(master.getrandbits(64)))
        records.append({"id": f"resume-{i:04d}", "text": text, "entities": entities})
    return records


def label_counts(records: Sequence[Record]) -> dict[str, int]:
    """How many entities of each label ``records`` hold, in :data:`ENTITY_TYPES` order."""
    counts = dict.fromkeys(ENTITY_TYPES, 0)
    for record in records:
        for entity in record["entities"]:
            counts[entity["label"]] += 1
    return counts


def _dumps(records: Sequence[Record]) -> str:
    return json.dumps(list(records), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(0o644)  # mkstemp makes the file private; a dataset is for everyone
        Path(tmp).replace(path)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _readme(folder: Path, records: Sequence[Record], n: int, seed: int, size: int) -> str:
    counts = label_counts(records)
    table = "\n".join(f"| {label} | {count} |" for label, count in counts.items())
    return f"""# Resume NER dataset `{folder.name}`

Synthetic resumes with character-span entity annotations, made by the seeded generator
`resume_ner/dataset.py` (generator version {GENERATOR_VERSION}). Every name, company, email and
phone number is invented; nothing is downloaded.

- `{DATA_FILE}`: {n} resumes, {size} bytes, seed {seed}.
- Regenerate it byte for byte from the example project folder (`examples/resume_ner/`):

  ```bash
  python -m resume_ner.dataset --out {folder.name} --n {n} --seed {seed}
  ```

  (from the repository root: `cd examples/resume_ner && ../../.venv/bin/python -m
  resume_ner.dataset --out {folder.name} --n {n} --seed {seed}`). The test
  `tests/examples/test_resume_ner_dataset.py` checks that the committed file is what this
  command writes.

## Format

`{DATA_FILE}` is a UTF-8 JSON list (indent 1, sorted keys) of records:

```json
{{"id": "resume-0000", "text": "...", "entities": [{{"start": 0, "end": 12, "label": "NAME"}}]}}
```

- `start`/`end` are character offsets (Python string indices, Unicode code points) into `text`,
  end exclusive; `text[start:end]` is the entity's text, without surrounding whitespace.
- Entities are sorted by `start` and never overlap.
- `label` is one of {", ".join(ENTITY_TYPES)}.
- Only the candidate's own details are entities: their name, contact details, location (where
  they live or worked), employers (past, present, or the one a cover letter applies to), job
  titles, skills and degrees. Look-alikes are plain text on purpose: a referee's name, title
  and employer, a client company, the title of the person the candidate reported to,
  universities (even "University of Austin"), dates, spoken languages and interests.
- Layouts: sectioned resumes, `Key: value` forms, first-person paragraphs, cover letters and
  compact job-site profiles; about one resume in twelve is all lower case.
- Record `i` depends only on the seed and `i`: with the same seed, a smaller dataset is a
  prefix of a larger one.

Load and split it with `resume_ner.dataset.load_dataset(folder)` (validates every record) and
`split_dataset(records, train_ratio, seed)`.

## Entity counts

| label | count |
|---|---|
{table}
"""


def write_dataset(folder: str | os.PathLike[str], n: int, seed: int) -> Path:
    """Generate ``n`` resumes with ``seed`` into ``folder/resumes.json`` and ``folder/README.md``.

    Both files are written atomically (temporary file, then ``os.replace``). Returns the path of
    the data file.
    """
    folder = Path(folder)
    records = generate_resumes(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = _dumps(records)
    path = folder / DATA_FILE
    _write_atomic(path, data)
    _write_atomic(folder / "README.md", _readme(folder, records, n, seed, len(data.encode())))
    return path


def _fail(path: Path, index: int, record: object, field: str, problem: str) -> ValueError:
    rid = record.get("id") if isinstance(record, dict) else None
    named = f" (id {rid!r})" if isinstance(rid, str) and rid else ""
    return ValueError(f"{path}: record {index}{named}: field {field!r}: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_record(path: Path, index: int, record: object, seen: dict[str, int]) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{path}: record {index}: expected an object, got {type(record).__name__}")
    for key in ("id", "text", "entities"):
        if key not in record:
            raise _fail(path, index, record, key, "missing")
    for key in sorted(record):
        if key not in ("id", "text", "entities"):
            raise _fail(path, index, record, key, "unexpected field")
    rid, text, entities = record["id"], record["text"], record["entities"]
    if not isinstance(rid, str) or not rid:
        raise _fail(path, index, record, "id", f"expected a non-empty string, got {rid!r}")
    if rid in seen:
        raise _fail(path, index, record, "id", f"duplicate of record {seen[rid]}")
    seen[rid] = index
    if not isinstance(text, str):
        raise _fail(path, index, record, "text", f"expected a string, got {type(text).__name__}")
    if not isinstance(entities, list):
        raise _fail(path, index, record, "entities", "expected a list")
    previous_end = 0
    for j, entity in enumerate(entities):
        where = f"entities[{j}]"
        if not isinstance(entity, dict):
            raise _fail(path, index, record, where, "expected an object")
        if sorted(entity) != ["end", "label", "start"]:
            raise _fail(
                path, index, record, where, f"expected keys end, label, start; got {sorted(entity)}"
            )
        start, end, label = entity["start"], entity["end"], entity["label"]
        for key, value in (("start", start), ("end", end)):
            if not _is_int(value):
                raise _fail(path, index, record, f"{where}.{key}", f"not an integer: {value!r}")
        if label not in ENTITY_TYPES:
            raise _fail(
                path,
                index,
                record,
                f"{where}.label",
                f"unknown label {label!r} (expected one of {', '.join(ENTITY_TYPES)})",
            )
        if not 0 <= start < end <= len(text):
            raise _fail(
                path, index, record, f"{where}.end",
                f"span [{start}, {end}) is empty or outside the text (length {len(text)})",
            )  # fmt: skip
        if start < previous_end:
            raise _fail(
                path, index, record, f"{where}.start",
                f"span [{start}, {end}) overlaps the previous entity (ends {previous_end})",
            )  # fmt: skip
        surface = text[start:end]
        if surface != surface.strip():
            raise _fail(
                path, index, record, f"{where}.start",
                f"span text {surface!r} has leading or trailing whitespace",
            )  # fmt: skip
        previous_end = end


def load_dataset(folder: str | os.PathLike[str]) -> list[Record]:
    """The records of ``folder/resumes.json`` (or of the JSON file ``folder`` itself), validated.

    Raises :class:`FileNotFoundError` when the file is missing and :class:`ValueError` naming the
    file, the record index and the field when a record is malformed.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / DATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no dataset file; generate it with "
            f"`python -m resume_ner.dataset --out {path.parent} --n N --seed S`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    seen: dict[str, int] = {}
    for index, record in enumerate(data):
        _check_record(path, index, record, seen)
    return data


def split_dataset(
    records: Sequence[Record], train_ratio: float, seed: int
) -> tuple[list[Record], list[Record]]:
    """Split ``records`` at random into ``(train, test)``, deterministically for a ``seed``.

    ``round(len(records) * train_ratio)`` records go to train, kept at least one on each side when
    there are two or more records. Both parts keep the input order; together they hold every
    record exactly once.
    """
    if isinstance(train_ratio, bool) or not 0.0 < float(train_ratio) < 1.0:
        raise ValueError(f"train_ratio must be strictly between 0 and 1, got {train_ratio!r}")
    n = len(records)
    n_train = round(n * float(train_ratio))
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    train_idx = sorted(order[:n_train])
    test_idx = sorted(order[n_train:])
    return [records[i] for i in train_idx], [records[i] for i in test_idx]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m resume_ner.dataset --out DIR --n N --seed S``."""
    parser = argparse.ArgumentParser(
        prog="python -m resume_ner.dataset",
        description="Generate the synthetic resume NER dataset (resumes.json + README.md).",
    )
    parser.add_argument("--out", required=True, type=Path, help="the dataset folder to write")
    parser.add_argument("--n", type=int, default=600, help="number of resumes (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    path = write_dataset(args.out, args.n, args.seed)
    counts = label_counts(load_dataset(path))
    summary = ", ".join(f"{label} {count}" for label, count in counts.items())
    print(f"wrote {args.n} resumes ({path.stat().st_size} bytes) to {path}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
