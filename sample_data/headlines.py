"""Invented financial headlines labelled negative / neutral / positive, with their rationales.

A deterministic template generator: invented companies across sectors, many event phrasings,
numbers, and a share of negated or hedged headlines ("fell less than feared") whose label
depends on more than one word. Square brackets in a template mark the words that carry the
sentiment; they become the example's rationale (as `models.loaded.tokenize` tokens) and are
removed from the text. For neutral headlines the rationale is the words that make the news
routine ("schedules earnings call"), so every example has one.

The splits are grouped by phrasing template: all headlines of one template (e.g.
"positive/plain/3") sit in the same split, so val and test phrasings are unseen in training and
test accuracy measures generalisation to new phrasings, not recall of known ones. Templates are
shared out within each class and kind (plain or twist) to about 70/15/15 of the headlines, so
every split has every class and both kinds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from foundation.dataset import Dataset
from foundation.tokens import tokenize
from foundation.types import Modality
from sample_data.building import make_ids, take_split
from sample_data.splits import grouped_split

NAME = "headlines"
CLASSES = ("negative", "neutral", "positive")
COUNT = 3000
SEED = 8812
SPLIT_SEED = 3002
# Share of each class written with negation or hedging, where single words mislead.
TWIST_RATE = 0.12


@dataclass(frozen=True)
class Company:
    name: str
    ticker: str
    sector: str


@dataclass(frozen=True)
class Headline:
    text: str
    label: int
    rationale: tuple[str, ...]
    template: str  # e.g. "positive/plain/3": which phrasing produced it
    twist: bool  # negated or hedged


def _companies(sector: str, entries: str) -> tuple[Company, ...]:
    pairs = (entry.rsplit(" ", 1) for entry in entries.strip().splitlines())
    return tuple(Company(name.strip(), ticker, sector) for name, ticker in pairs)


COMPANIES: tuple[Company, ...] = (
    *_companies("tech", """
        Norvix Systems NVXS
        Quantela Software QNTL
        Brightcore Semiconductor BRCS
        Cirrusway Networks CRWN
        Lumetric Labs LMTR
        Datavane Corp DTVN
        Helixsoft HLXS
        Pixelore Technologies PXLR
    """),
    *_companies("pharma", """
        Veridan Pharma VRDN
        Calloway Therapeutics CLWY
        Meditrix Biosciences MDTX
        Orenza Health ORNZ
        Genhaven Bio GNHV
        Pellucid Medical PLCD
        Synthera Labs SYNT
        Auralis Biotech AURL
    """),
    *_companies("energy", """
        Norvale Energy NVLE
        Sunreach Power SNRP
        Tidewell Oil TDWL
        Greystone Gas GRYG
        Verdant Renewables VRDT
        Ironbay Petroleum IRBP
        Brightfield Solar BFSL
        Kestrel Utilities KSTU
    """),
    *_companies("banking", """
        Harbourline Bank HBLN
        Crestmont Financial CRMF
        First Alderney Bancorp FALB
        Summitvale Capital SMVC
        Redwater Trust RDWT
        Oakhurst Bancshares OAKB
        Meridale Credit MRDC
        Silverpine Financial SLVP
    """),
    *_companies("retail", """
        Cartwell Stores CRTW
        Marlowe & Finch MRLF
        Brambleway Retail BRMW
        Urbanite Apparel URBA
        Pennyfield Markets PNYF
        Hollis Home HLHM
        Streamline Outfitters STRO
        Galewood Grocers GLWG
    """),
    *_companies("auto", """
        Torvane Motors TRVM
        Kinetic Drive KNDR
        Rallis Automotive RLAU
        Voltaro EV VLTR
        Ashcombe Auto Parts ASHP
        Ridgeline Trucks RDGT
        Celerion Mobility CLRN
        Boltmark Motors BLTM
    """),
    *_companies("telecom", """
        Skyreach Telecom SKYT
        Ondara Communications ONDR
        Fibrelink FBRL
        Tellurion Wireless TLWR
        Wavecrest Media WVCM
        Nexora Networks NXRA
        Clearpath Mobile CLPM
        Signalhill Broadband SGHB
    """),
    *_companies("industrials", """
        Stormont Aerospace STMA
        Granitex Industries GRTX
        Halberd Rail HLBR
        Corvid Steel CRVS
        Ironclad Machinery IRCM
        Westmere Engineering WSME
        Aldane Aviation ALDA
        Quarrystone Materials QRSM
    """),
    *_companies("food", """
        Maplecrest Foods MPCF
        Sunmeadow Dairy SNMD
        Bakerton Snacks BKTS
        Roastery Brands RSTB
        Fernhill Beverages FRNB
        Goldleaf Farms GLDF
        Coastline Seafood CSTS
        Harvest Moon Brands HVMB
    """),
)

PRODUCTS = {
    "tech": ("cloud software", "smartphone", "chip", "laptop", "data center", "AI platform"),
    "pharma": ("cancer drug", "vaccine", "diabetes treatment", "gene therapy", "heart device"),
    "energy": ("solar panel", "natural gas", "battery storage", "wind turbine", "jet fuel"),
    "banking": ("mortgage", "credit card", "wealth management", "small business lending", "payments"),
    "retail": ("apparel", "grocery", "home goods", "footwear", "sportswear"),
    "auto": ("electric vehicle", "pickup truck", "SUV", "hybrid engine", "auto parts"),
    "telecom": ("5G", "broadband", "wireless", "fiber", "streaming"),
    "industrials": ("aircraft", "jet engine", "steel", "rail equipment", "cement"),
    "food": ("snack", "frozen food", "beverage", "coffee", "dairy"),
}

_WORDS = {
    "broker": (
        "Halden Securities", "Marlow Capital", "Brightwater Partners", "Falconer Research",
        "Northgate Bank", "Ashby & Co", "Pinecrest Markets", "Oakfield Advisors",
        "Stanmore Brothers", "Vantor Research",
    ),
    "regulator": (
        "the SEC", "the FTC", "EU regulators", "the Justice Department", "state regulators",
        "UK regulators", "the consumer watchdog",
    ),
    "issue": (
        "pricing practices", "data privacy", "safety disclosures", "emissions reporting",
        "billing errors", "accounting practices", "patent infringement", "marketing claims",
    ),
    "client": (
        "the Defense Department", "a European carrier", "a major automaker", "the city of Denver",
        "a national retailer", "a Gulf utility", "the Navy", "a state health agency",
    ),
    "city": (
        "Austin", "Denver", "Toronto", "London", "Singapore", "Frankfurt", "Boston", "Phoenix",
        "Dublin", "Atlanta", "Charlotte", "Zurich",
    ),
    "conf": (
        "the Global Technology Summit", "an industry conference", "the annual healthcare forum",
        "the energy investor conference", "a retail leadership summit", "the financial services conference",
        "a broker conference in New York",
    ),
    "region": ("Europe", "Asia", "Latin America", "North America", "China", "the Middle East", "India"),
    "unit": ("consumer", "cloud", "logistics", "wholesale", "services", "industrial", "international"),
    "event": ("the Fed decision", "the jobs report", "inflation data", "earnings season", "the holiday weekend"),
    "exchange": ("the Nasdaq", "the NYSE", "the London Stock Exchange", "the Toronto exchange"),
    "first": ("Maria", "James", "Priya", "Daniel", "Chen", "Olivia", "Ahmed", "Sofia", "Lucas", "Hannah", "Kenji", "Grace"),
    "last": ("Alvarez", "Whitfield", "Raman", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Kowalski", "Haddad"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"),
    "quarter": (
        "Q1", "Q2", "Q3", "Q4", "first-quarter", "second-quarter", "third-quarter", "fourth-quarter",
        "first-half",
    ),
    "year": ("2025", "2026", "fiscal 2025", "fiscal 2026", "full-year"),
    "prefix": ("UPDATE: ", "BRIEF: ", "Exclusive: "),
    "suffix": (
        " - filing", " - sources", " - report", " on Monday", " on Tuesday", " on Wednesday",
        " on Thursday", " on Friday", " this week",
    ),
}

# Indexed by class name; "plain" headlines say what they mean, "twist" ones negate or hedge.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "positive": {
        "plain": (
            "{co} [beats] {q} profit estimates",
            "{co} {q} earnings [top] forecasts",
            "{co} posts [record] revenue of {amt}",
            "{co} profit [jumps] {pct} on [strong] {product} demand",
            "{co} [raises] full-year guidance",
            "{co} [lifts] {year} outlook after [strong] quarter",
            "{broker} [upgrades] {co} to [buy]",
            "{co} [upgraded] to [outperform] at {broker}",
            "{co} [raises] quarterly dividend by {pct}",
            "{co} [boosts] dividend and unveils {amt} [buyback]",
            "{co} [wins] {amt} contract from {client}",
            "{co} shares [{up}] on takeover bid from {co2}",
            "{co2} agrees to buy {co} at a {pct} [premium]",
            "{co} [wins] regulatory approval for new {product}",
            "{co} stock [hits] [record] high",
            "{co} shares [{up}] {pct} after {product} launch",
            "{co} shares [{up}] {pct} in early trading",
            "{co} revenue [climbs] {pct} as {product} sales [accelerate]",
            "{co} swings to {q} [profit]",
            "{co} margins [improve] for a third straight quarter",
            "{co} [rallies] as analysts [praise] new {product} lineup",
            "{co} [gains] {pct} after [upbeat] forecast",
            "{co} {product} sales [rebound] [sharply]",
            "{co} [exceeds] {q} revenue expectations",
            "{co} net income [doubles] on [robust] {product} demand",
            "{co} [expands] into {region} as orders [soar]",
            "Shares of {co} [climb] after [better-than-expected] results",
            "{co} [outperforms] peers with [strong] {q} sales",
            "{co} [tops] analyst forecasts, shares [rise] {pct}",
        ),
        "twist": (
            "{co} shares fell [less than feared] after {q} results",
            "{co} [did not cut] its dividend despite slowdown",
            "{co} {q} loss [narrower than expected]",
            "{co} [avoids layoffs] despite soft {region} demand",
            "{co} [no longer] expects a loss this year",
            "{co} sales decline [smaller than feared]",
            "{co} says recall [will not hurt] earnings",
            "{co} [shrugs off] {issue} probe",
        ),
    },
    "negative": {
        "plain": (
            "{co} [misses] {q} earnings estimates",
            "{co} {q} profit [falls] {pct}",
            "{co} swings to {q} [loss]",
            "{co} [cuts] {year} forecast",
            "{co} [warns] of [weaker] {product} sales",
            "{co} to [cut] {n} [jobs]",
            "{co} [lays off] {pct} of its workforce",
            "{co} [sued] by {regulator} over {issue}",
            "{co} faces class action [lawsuit] over {issue}",
            "{co} [fined] {amt} by {regulator}",
            "{broker} [downgrades] {co} to [sell]",
            "{co} [downgraded] to [underperform] at {broker}",
            "{co} [slashes] dividend by {pct}",
            "{co} [suspends] its dividend",
            "{co} [recalls] {product} products over safety [defect]",
            "{co} shares [{down}] {pct} after {q} results",
            "{co} shares [{down}] {pct} in early trading",
            "{co} files for [bankruptcy] protection",
            "{co} CEO [resigns] amid accounting [probe]",
            "{co} revenue [drops] {pct} as demand [weakens]",
            "{co} stock [tumbles] on [weak] guidance",
            "{co} [loses] major client to {co2}",
            "{co} [delays] {product} launch, shares [slide]",
            "{co} hit by [investigation] from {regulator} over {issue}",
            "{co} margins [shrink] as costs [mount]",
            "{co} [halts] production at {city} plant",
            "{co} data [breach] exposes {n} customers",
            "{co} [lowers] {q} sales outlook",
            "Shares of {co} [sink] after [disappointing] results",
        ),
        "twist": (
            "{co} profit [not as strong as expected]",
            "{co} [fails to win] contract from {client}",
            "{co} [no longer] expects profit growth this year",
            "{co} {q} growth [slower than expected]",
            "{co} beats estimates [but cuts] outlook",
            "{co} {q} revenue [barely grew]",
            "{co} {q} gains [not enough] to offset higher costs",
            "{co} [unable to meet] {year} targets",
        ),
    },
    "neutral": {
        "plain": (
            "{co} to [present] at {conf}",
            "{co} [schedules] {q} earnings call for {date}",
            "{co} [names new CFO]",
            "{co} [appoints] {person} as chief operating officer",
            "{co} to [report] {q} results on {date}",
            "{co} [announces date] of annual shareholder meeting",
            "{co} [relocates] headquarters to {city}",
            "{co} [declares regular] quarterly dividend of {cents} per share",
            "{co} [reaffirms] full-year outlook",
            "{co} {q} results [in line] with estimates",
            "{co} shares [little changed] ahead of {event}",
            "{co} [files] annual report with {regulator}",
            "{co} [prices offering] of {amt} senior notes",
            "{co} to [hold] investor day in {city}",
            "{co} [completes reorganisation] of {unit} unit",
            "{co} [elects] {person} to board of directors",
            "{co} [opens] new office in {city}",
            "{co} [confirms] {person} will [remain] chief executive",
            "{co} [renames] {unit} division",
            "{co} shares [unchanged] after results [meet] expectations",
            "{co} [webcast] of {conf} presentation now [available]",
            "{co} [updates] investor presentation",
            "{co} [sets] record date for {cents} dividend",
            "{co} to [transfer] stock listing to {exchange}",
            "{co} [hires] {person} as head of investor relations",
        ),
        "twist": (
            "{co} [denies] report of takeover talks",
            "{co} [neither raises nor cuts] guidance",
            "{co} [keeps] dividend [unchanged]",
            "{co} results [neither beat nor miss] estimates",
            "{co} says [no decision] yet on sale of {unit} unit",
        ),
    },
}

# Price-move verbs, most common first. They are drawn with falling (1/rank) weights, so the rare
# ones are seen a handful of times or not at all in training, as in real news.
MOVES = {
    "up": ("rise", "jump", "climb", "surge", "gain", "rally", "soar", "advance", "spike", "leap", "rebound", "skyrocket"),
    "down": ("fall", "drop", "slide", "sink", "tumble", "plunge", "slump", "decline", "retreat", "sag", "crater", "nosedive"),
}

_SPAN = re.compile(r"\[([^\[\]]*)\]")


def generate_headlines(n: int = COUNT, seed: int = SEED) -> list[Headline]:
    """`n` distinct headlines, classes balanced (counts differ by at most one)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.resize(np.arange(len(CLASSES)), n))
    seen: set[str] = set()
    headlines: list[Headline] = []
    for label in labels:
        for _ in range(200):
            headline = _compose(rng, int(label))
            # Distinct as the model reads them, so no token sequence sits in two splits.
            key = " ".join(tokenize(headline.text))
            if key not in seen:
                break
        else:
            raise RuntimeError("headline templates exhausted; add phrasings or ask for fewer")
        seen.add(key)
        headlines.append(headline)
    return headlines


def build() -> dict[str, Dataset]:
    """The clean splits: "train", "val", "test", grouped by template (see the module docstring)."""
    headlines = generate_headlines()
    texts = [h.text for h in headlines]
    y = np.array([h.label for h in headlines], dtype=np.int64)
    rationales = [h.rationale for h in headlines]
    ids = make_ids(NAME, len(headlines))
    return {
        split: take_split(NAME, split, Modality.TEXT, CLASSES, ids, texts, y, index, rationales=rationales)
        for split, index in template_split(headlines).items()
    }


def template_split(headlines: list[Headline], seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Positions of "train", "val" and "test": whole templates, about 70/15/15 per class and kind."""
    templates = [h.template for h in headlines]
    # "positive/plain/3" -> stratum "positive/plain"
    return grouped_split(templates, [t.rsplit("/", 1)[0] for t in templates], seed)


def _compose(rng: np.random.Generator, label: int) -> Headline:
    kind = "twist" if rng.random() < TWIST_RATE else "plain"
    options = TEMPLATES[CLASSES[label]][kind]
    which = int(rng.integers(len(options)))
    company = COMPANIES[int(rng.integers(len(COMPANIES)))]
    marked = options[which].format_map(_Slots(rng, company))
    if rng.random() < 0.08:
        marked = _pick(rng, "prefix") + marked
    if rng.random() < 0.3:
        marked += _pick(rng, "suffix")
    rationale = tuple(token for span in _SPAN.findall(marked) for token in tokenize(span))
    text = _SPAN.sub(r"\1", marked)
    return Headline(text, label, rationale, f"{CLASSES[label]}/{kind}/{which}", kind == "twist")


def _pick(rng: np.random.Generator, key: str) -> str:
    options = _WORDS[key]
    return options[int(rng.integers(len(options)))]


class _Slots(dict):
    """Fills a template's {slots} on demand, so only the slots it uses consume randomness."""

    def __init__(self, rng: np.random.Generator, company: Company) -> None:
        super().__init__()
        self._rng = rng
        self._company = company

    def __missing__(self, key: str) -> str:
        value = self._make(key)
        self[key] = value
        return value

    def _make(self, key: str) -> str:
        rng, company = self._rng, self._company
        if key == "co":
            return _subject(rng, company)
        if key == "co2":
            others = [c for c in COMPANIES if c != company]
            return others[int(rng.integers(len(others)))].name
        if key == "product":
            products = PRODUCTS[company.sector]
            return products[int(rng.integers(len(products)))]
        if key in MOVES:
            options = MOVES[key]
            weights = 1.0 / np.arange(1, len(options) + 1)
            return options[int(rng.choice(len(options), p=weights / weights.sum()))]
        if key == "q":
            return _pick(rng, "quarter")
        if key == "pct":
            if rng.random() < 0.5:
                return f"{int(rng.integers(2, 46))}%"
            return f"{rng.integers(10, 300) / 10:.1f}%"
        if key == "amt":
            if rng.random() < 0.5:
                return f"${int(rng.integers(20, 900))} million"
            return f"${rng.integers(11, 99) / 10:.1f} billion"
        if key == "n":
            return f"{int(rng.integers(1, 90)) * 50:,}"
        if key == "cents":
            return f"${int(rng.integers(5, 95)) / 100:.2f}"
        if key == "date":
            return f"{_pick(rng, 'month')} {int(rng.integers(1, 29))}"
        if key == "person":
            return f"{_pick(rng, 'first')} {_pick(rng, 'last')}"
        return _pick(rng, key)


def _subject(rng: np.random.Generator, company: Company) -> str:
    roll = rng.random()
    if roll < 0.6:
        return company.name
    if roll < 0.85:
        return f"{company.name} ({company.ticker})"
    return company.ticker
