"""Synthetic LEADS-shaped literature corpus: systematic reviews, publications and registry records.

Input for LEADSInstruct-style curation and its tests/benchmarks (search-query generation,
screening, extraction of study characteristics, participant statistics, arm design and trial
results). At ``scale=1.0`` the sizes are LEADS's (arXiv 2501.16255): 21,335 reviews, 453,625
publications, 27,015 ClinicalTrials.gov records; every count scales linearly with ``scale``.
Deterministic by seed; ids, sizes and links are numpy-vectorised and publication text is put
together by Arrow kernels from small templates and per-topic vocabularies (written for this
module; nothing here is medical knowledge or copied text).

Shapes and distributions:

- 40 clinical topics, Zipf-skewed (the first topic has ~23% of rows, the last ~0.6%).
- Included studies per review: log-normal (median ~12, long tail, capped at 400), drawn from
  the primary studies (trial reports, cohorts) of the review's topic (10% from any topic) with
  Pareto popularity, so many publications are included by several reviews. Review year = latest
  included publication's year + 0..2.
- ~1% of included PMIDs name no publication row (dangling: a join must quarantine them).
  ~0.5% of primary publications have a DOI but no PMID; reviews that include them list the DOI
  in ``included_dois`` (a join by DOI finds them, a join by PMID cannot).
- ~60% of registry records are reported by 1+ publications (``publications.nct_id``; those
  publications share the record's topic, interventions, comparator, outcome and enrolment, and
  name the NCT id in the abstract); ~40% of records have results. ``included_nct_ids`` are the
  registry records of a review's included publications plus, for some reviews, unpublished
  records of the topic; every one exists in ``registry``.

Tables (Arrow types in :data:`REVIEWS_SCHEMA`, :data:`PUBLICATIONS_SCHEMA`,
:data:`REGISTRY_SCHEMA`; nested columns are list/struct, not JSON, except the registry's
CT.gov sections):

``reviews``
    review_id (string, ``SR`` + 6 digits), pmid (string), title (string), topic (string),
    pico (struct<P, I, C, O: string>: sentences, as TrialMind-SLR's ``PICO``),
    pico_terms (struct<P, I, C, O: list<string>>: as ``PICO_terms``),
    criteria (list<struct<kind: "inclusion" | "exclusion", text: string>>),
    included_pmids (list<string>), included_nct_ids (list<string>),
    included_dois (list<string>: included studies known only by DOI), year (int16).
``publications``
    pmid (string, null for DOI-only records), doi (string, null for ~15%; lower case),
    title (string), abstract (string), full_text (string, null for ~85%; paragraphs separated
    by blank lines), topic (string), year (int16), nct_id (string, null unless the
    publication reports a registry record), publication_type ("trial report" | "cohort" |
    "review" | "other").
``registry``
    nct_id (string, ``NCT`` + 8 digits), brief_title (string), topic (string),
    conditions (list<string>), has_results (bool),
    protocol_section (string: JSON of a CT.gov API v2 ``protocolSection``: identification,
    status, description, conditions, design, armsInterventions, outcomes, eligibility modules),
    results_section (string, null without results: JSON of a ``resultsSection`` with
    baselineCharacteristicsModule and outcomeMeasuresModule). ``{"protocolSection":
    json.loads(protocol_section), "resultsSection": json.loads(results_section or "{}"),
    "hasResults": has_results}`` is a study that :func:`medreason_dist.literature.ctgov.study_rows`
    reads.

CLI: ``python -m medreason_dist.literature.synthetic_corpus --scale 0.001 --seed 0 --out DIR``
writes ``DIR/reviews``, ``DIR/publications``, ``DIR/registry`` (committed datasets) and prints
one JSON line of counts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medreason_dist import storage

FULL_REVIEWS = 21_335
FULL_PUBLICATIONS = 453_625
FULL_REGISTRY = 27_015
STAGE = "synthetic_corpus"
GENERATOR_VERSION = 2  # 2: reviews vary population age, setting and outcome time point

_S = pa.string()
_LS = pa.list_(_S)
PICO_TYPE = pa.struct([(k, _S) for k in "PICO"])
PICO_TERMS_TYPE = pa.struct([(k, _LS) for k in "PICO"])
CRITERION_TYPE = pa.struct([("kind", _S), ("text", _S)])
REVIEWS_SCHEMA = pa.schema([
    ("review_id", _S), ("pmid", _S), ("title", _S), ("topic", _S), ("pico", PICO_TYPE),
    ("pico_terms", PICO_TERMS_TYPE), ("criteria", pa.list_(CRITERION_TYPE)), ("included_pmids", _LS),
    ("included_nct_ids", _LS), ("included_dois", _LS), ("year", pa.int16()),
])
PUBLICATIONS_SCHEMA = pa.schema([
    ("pmid", _S), ("doi", _S), ("title", _S), ("abstract", _S), ("full_text", _S), ("topic", _S),
    ("year", pa.int16()), ("nct_id", _S), ("publication_type", _S),
])
REGISTRY_SCHEMA = pa.schema([
    ("nct_id", _S), ("brief_title", _S), ("topic", _S), ("conditions", _LS), ("has_results", pa.bool_()),
    ("protocol_section", _S), ("results_section", _S),
])
PUBLICATION_TYPES = ("trial report", "cohort", "review", "other")
_TRIAL, _COHORT = 0, 1

# topic | population | interventions (prefix B:/P:/D: = behavioural/procedure/device, else drug)
# | outcomes as name:unit:typical value (unit "Participants": typical proportion of an arm)
_TOPIC_SPEC = """\
non-small cell lung cancer|adults with advanced non-small cell lung cancer|a PD-1 inhibitor;platinum doublet chemotherapy;a tyrosine kinase inhibitor|overall survival:months:14;objective response:Participants:0.3
breast cancer|women with early breast cancer|an aromatase inhibitor;a HER2-targeted antibody;P:hypofractionated radiotherapy|disease-free survival:months:48;grade 3 or worse toxicity:Participants:0.2
type 2 diabetes|adults with type 2 diabetes|an SGLT2 inhibitor;a GLP-1 receptor agonist;B:a structured lifestyle programme|HbA1c:percent:7.6;body weight:kg:88
hypertension|adults with uncontrolled hypertension|a thiazide-like diuretic;a calcium channel blocker;D:home blood pressure telemonitoring|systolic blood pressure:mmHg:142;diastolic blood pressure:mmHg:86
heart failure|patients with heart failure with reduced ejection fraction|an angiotensin receptor-neprilysin inhibitor;a mineralocorticoid antagonist;B:exercise-based cardiac rehabilitation|hospitalisation for heart failure:Participants:0.18;six-minute walk distance:metres:350
atrial fibrillation|patients with non-valvular atrial fibrillation|a direct oral anticoagulant;P:catheter ablation;a rate-control strategy|stroke or systemic embolism:Participants:0.03;major bleeding:Participants:0.04
major depressive disorder|adults with major depressive disorder|an SSRI;B:internet-delivered cognitive behavioural therapy;D:repetitive transcranial magnetic stimulation|depression severity score:points on a scale:18;remission:Participants:0.35
asthma|children and adults with persistent asthma|an inhaled corticosteroid-formoterol reliever;a biologic targeting IL-5;B:a self-management education programme|severe exacerbations:Participants:0.22;asthma control score:points on a scale:1.6
COPD|adults with moderate to severe COPD|a long-acting muscarinic antagonist;triple inhaled therapy;B:pulmonary rehabilitation|moderate or severe exacerbations:Participants:0.4;FEV1:mL:1250
knee osteoarthritis|adults with symptomatic knee osteoarthritis|B:supervised exercise therapy;intra-articular corticosteroid injection;a topical NSAID|pain score:points on a scale:5.8;physical function score:points on a scale:32
rheumatoid arthritis|adults with active rheumatoid arthritis|a JAK inhibitor;a TNF inhibitor;methotrexate escalation|ACR20 response:Participants:0.55;disease activity score:points on a scale:5.1
colorectal cancer|patients with metastatic colorectal cancer|an anti-EGFR antibody;an anti-VEGF antibody;P:liver metastasis resection|progression-free survival:months:9;overall survival:months:24
melanoma|patients with unresectable melanoma|a combined checkpoint blockade;a BRAF-MEK inhibitor pair;an oncolytic virus|progression-free survival:months:11;objective response:Participants:0.45
prostate cancer|men with metastatic prostate cancer|an androgen receptor inhibitor;P:radical prostatectomy;a taxane chemotherapy|radiographic progression-free survival:months:20;PSA response:Participants:0.6
chronic kidney disease|adults with chronic kidney disease|an SGLT2 inhibitor;a non-steroidal mineralocorticoid antagonist;B:a low-protein diet|eGFR decline:mL/min/1.73m2:4.2;kidney failure:Participants:0.08
stroke|adults with acute ischaemic stroke|P:mechanical thrombectomy;intravenous thrombolysis;B:early mobilisation|functional independence:Participants:0.45;symptomatic haemorrhage:Participants:0.05
sepsis|adults with septic shock|hydrocortisone;balanced crystalloid fluids;P:early goal-directed resuscitation|28-day mortality:Participants:0.3;vasopressor-free days:days:18
obesity|adults with obesity|a GLP-1 receptor agonist;P:bariatric surgery;B:a very-low-energy diet|body weight change:percent:-6;waist circumference:cm:108
migraine|adults with episodic migraine|a CGRP monoclonal antibody;a triptan;B:biofeedback training|monthly migraine days:days:8.5;headache relief at 2 hours:Participants:0.5
schizophrenia|adults with schizophrenia|a long-acting injectable antipsychotic;clozapine;B:family psychoeducation|relapse:Participants:0.3;symptom severity score:points on a scale:78
HIV infection|adults living with HIV|an integrase inhibitor regimen;a two-drug regimen;B:adherence counselling|viral suppression:Participants:0.88;CD4 count:cells/uL:520
hepatitis C|adults with chronic hepatitis C|a pangenotypic direct-acting antiviral;a protease inhibitor combination;B:peer-supported treatment|sustained virological response:Participants:0.95;treatment discontinuation:Participants:0.02
psoriasis|adults with moderate to severe plaque psoriasis|an IL-17 inhibitor;an IL-23 inhibitor;D:narrowband UVB phototherapy|PASI 90 response:Participants:0.6;itch score:points on a scale:6
Crohn's disease|adults with moderately to severely active Crohn's disease|an anti-integrin antibody;an IL-12/23 inhibitor;P:early ileocaecal resection|clinical remission:Participants:0.35;endoscopic response:Participants:0.3
ulcerative colitis|adults with active ulcerative colitis|mesalazine;a JAK inhibitor;P:faecal microbiota transplantation|clinical remission:Participants:0.3;mucosal healing:Participants:0.35
multiple sclerosis|adults with relapsing multiple sclerosis|an anti-CD20 antibody;an S1P receptor modulator;B:aerobic training|annualised relapse rate:relapses per year:0.3;disability progression:Participants:0.12
Parkinson's disease|patients with Parkinson's disease|levodopa-carbidopa intestinal gel;a dopamine agonist;P:deep brain stimulation|motor score:points on a scale:32;off time:hours per day:5
Alzheimer's disease|adults with early Alzheimer's disease|an anti-amyloid antibody;a cholinesterase inhibitor;B:cognitive stimulation therapy|cognitive score:points on a scale:22;amyloid-related imaging abnormalities:Participants:0.12
osteoporosis|postmenopausal women with osteoporosis|a bisphosphonate;an anti-RANKL antibody;B:resistance and balance training|new vertebral fracture:Participants:0.06;lumbar spine bone density change:percent:4
chronic low back pain|adults with chronic low back pain|B:a multidisciplinary rehabilitation programme;B:spinal manipulation;an opioid analgesic|pain intensity:points on a scale:6.2;disability index:points on a scale:30
gestational diabetes|pregnant women with gestational diabetes|metformin;insulin;B:medical nutrition therapy|large-for-gestational-age infant:Participants:0.15;neonatal hypoglycaemia:Participants:0.1
preterm birth|pregnant women at risk of preterm birth|vaginal progesterone;D:cervical pessary;P:cervical cerclage|birth before 34 weeks:Participants:0.15;neonatal death:Participants:0.02
acute myeloid leukaemia|adults with newly diagnosed acute myeloid leukaemia|a hypomethylating agent plus venetoclax;intensive induction chemotherapy;P:allogeneic stem cell transplantation|complete remission:Participants:0.6;overall survival:months:15
hepatocellular carcinoma|patients with unresectable hepatocellular carcinoma|an anti-PD-L1 plus anti-VEGF combination;a multikinase inhibitor;P:transarterial chemoembolisation|overall survival:months:16;progression-free survival:months:6
pneumonia|adults hospitalised with community-acquired pneumonia|a short antibiotic course;adjunctive corticosteroids;a beta-lactam plus macrolide|clinical stability:days:4;30-day mortality:Participants:0.08
COVID-19|adults hospitalised with COVID-19|dexamethasone;an IL-6 receptor antagonist;D:awake prone positioning|28-day mortality:Participants:0.22;invasive ventilation:Participants:0.15
insomnia|adults with chronic insomnia|B:cognitive behavioural therapy for insomnia;a dual orexin receptor antagonist;B:sleep restriction therapy|insomnia severity index:points on a scale:17;total sleep time:minutes:360
atopic dermatitis|children and adults with atopic dermatitis|an IL-4 receptor antibody;a topical calcineurin inhibitor;B:an emollient regimen|EASI 75 response:Participants:0.5;itch score:points on a scale:7
tobacco dependence|adults who smoke daily|varenicline;D:nicotine e-cigarettes;B:behavioural counselling|continuous abstinence:Participants:0.2;cigarettes per day:cigarettes:12
coronary artery disease|patients with stable coronary artery disease|P:percutaneous coronary intervention;a high-intensity statin;B:a cardiac rehabilitation programme|major adverse cardiovascular events:Participants:0.1;angina frequency score:points on a scale:70
"""


@dataclass(frozen=True)
class Topic:
    name: str
    population: str
    interventions: tuple[tuple[str, str], ...]  # (name, CT.gov intervention type)
    outcomes: tuple[tuple[str, str, float], ...]  # (name, unit, typical value)


_ITYPE = {"B": "BEHAVIORAL", "P": "PROCEDURE", "D": "DEVICE"}


def _parse_topics(spec: str) -> tuple[Topic, ...]:
    topics = []
    for line in spec.strip().splitlines():
        name, population, intervs, outs = line.split("|")
        iv = tuple((i[2:], _ITYPE[i[0]]) if i[1:2] == ":" else (i, "DRUG") for i in intervs.split(";"))
        oc = tuple((n, u, float(v)) for n, u, v in (o.split(":") for o in outs.split(";")))
        topics.append(Topic(name, population, iv, oc))
    return tuple(topics)


TOPICS = _parse_topics(_TOPIC_SPEC)
TOPIC_NAMES = tuple(t.name for t in TOPICS)
# (comparator, arm type, intervention type or None)
COMPARATORS = (("placebo", "PLACEBO_COMPARATOR", "DRUG"), ("usual care", "OTHER", "OTHER"),
               ("standard therapy", "ACTIVE_COMPARATOR", "OTHER"), ("no intervention", "NO_INTERVENTION", None),
               ("a sham procedure", "SHAM_COMPARATOR", "PROCEDURE"))
_N_IV = len(TOPICS[0].interventions)  # every topic has 3 interventions and 2 outcomes
assert all(len(t.interventions) == _N_IV and len(t.outcomes) == 2 for t in TOPICS)
_STATUS = ("COMPLETED", "RECRUITING", "ACTIVE_NOT_RECRUITING", "TERMINATED", "UNKNOWN")
_TIME_FRAMES = ("12 weeks", "24 weeks", "52 weeks", "6 months", "2 years", "up to 5 years")
_DOI_PREFIXES = np.array([1001, 1016, 1056, 1136, 1186, 1371, 1093, 1111, 1097, 1177])


@dataclass(frozen=True)
class SyntheticCorpus:
    reviews: pa.Table  # REVIEWS_SCHEMA
    publications: pa.Table  # PUBLICATIONS_SCHEMA
    registry: pa.Table  # REGISTRY_SCHEMA
    params: dict  # what generated it (scale, seed, version)

    def counts(self) -> dict[str, int]:
        return {"reviews": self.reviews.num_rows, "publications": self.publications.num_rows,
                "registry": self.registry.num_rows}


# --------------------------------------------------------------------------------------------
# Arrow text helpers


def _render(templates: list[str], choice: np.ndarray, slots: dict[str, pa.Array]) -> pa.Array:
    """Per row, template ``choice[i]`` with its ``{slot}`` filled from ``slots[slot][i]``.
    All templates must name the same slots in the same order."""
    parsed = [re.split(r"\{(\w+)\}", t) for t in templates]
    names = parsed[0][1::2]
    if any(p[1::2] != names for p in parsed):
        raise ValueError(f"templates differ in their slots: {templates}")
    idx = pa.array(choice, pa.int32())
    parts: list = []
    for k in range(len(names) + 1):
        parts.append(pa.array([p[2 * k] for p in parsed]).take(idx))
        if k < len(names):
            parts.append(slots[names[k]])
    return pc.binary_join_element_wise(*parts, "")


def _strs(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), _S)


def _fmt1(values: np.ndarray) -> pa.Array:
    """Non-negative floats as text with one decimal ("7.0")."""
    tenths = np.rint(np.maximum(values, 0) * 10).astype(np.int64)
    return pc.binary_join_element_wise(_strs(tenths // 10), _strs(tenths % 10), ".")


def _zipf_topics(rng: np.random.Generator, n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, len(TOPICS) + 1)
    return rng.choice(len(TOPICS), size=n, p=w / w.sum()).astype(np.int32)


def _scaled(full: int, scale: float, floor: int) -> int:
    return max(floor, int(round(full * scale)))


# --------------------------------------------------------------------------------------------
# Generator


def generate_corpus(scale: float = 1.0, *, seed: int = 0) -> SyntheticCorpus:
    """Reviews, publications and registry records at ``scale`` times LEADS's sizes (see module doc)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    rng = np.random.default_rng(seed)
    n_rev = _scaled(FULL_REVIEWS, scale, 2)
    n_pub = _scaled(FULL_PUBLICATIONS, scale, 50)
    n_reg = _scaled(FULL_REGISTRY, scale, 5)
    n_dangling = max(5, n_pub // 100)

    # PMIDs: one increasing pool shuffled among publications, reviews and dangling references.
    pool = 10_000_000 + np.cumsum(rng.integers(1, 40, n_pub + n_rev + n_dangling))
    rng.shuffle(pool)
    pub_pmid = np.sort(pool[:n_pub])
    rev_pmid, dangling = pool[n_pub:n_pub + n_rev], pool[n_pub + n_rev:]
    nct_num = 100 + np.cumsum(rng.integers(1, 400, n_reg))
    nct_ids = pc.binary_join_element_wise("NCT", pc.utf8_lpad(_strs(nct_num), 8, "0"), "")

    # Registry design: topic, intervention, comparator, outcome, enrolment.
    reg_topic = _zipf_topics(rng, n_reg)
    reg_iv = rng.integers(0, _N_IV, n_reg)
    reg_comp = _comparators(rng, reg_topic, reg_iv)
    reg_out = rng.integers(0, 2, n_reg)
    reg_n = np.clip(np.rint(rng.lognormal(np.log(180), 1.0, n_reg)), 12, 20_000).astype(np.int64)
    reg_results = rng.random(n_reg) < 0.4

    # Publications reporting registry records: ~60% of records, 1+ publications each.
    linked = np.flatnonzero(rng.random(n_reg) < 0.6)
    per_record = rng.geometric(0.6, linked.size)
    report_reg = np.repeat(linked, per_record)[: n_pub // 2]
    report_pub = rng.choice(n_pub, report_reg.size, replace=False)
    pub_reg = np.full(n_pub, -1, np.int64)
    pub_reg[report_pub] = report_reg
    is_report = pub_reg >= 0

    pub_type = rng.choice(4, n_pub, p=[0.10, 0.40, 0.15, 0.35]).astype(np.int32)
    pub_type[is_report] = _TRIAL
    pub_topic = _zipf_topics(rng, n_pub)
    pub_topic[is_report] = reg_topic[pub_reg[is_report]]
    pub_iv = rng.integers(0, _N_IV, n_pub)
    pub_comp = _comparators(rng, pub_topic, pub_iv)
    pub_out = rng.integers(0, 2, n_pub)
    pub_n = np.clip(np.rint(rng.lognormal(np.log(250), 1.2, n_pub)), 8, 200_000).astype(np.int64)
    for arr, src in ((pub_iv, reg_iv), (pub_comp, reg_comp), (pub_out, reg_out), (pub_n, reg_n)):
        arr[is_report] = src[pub_reg[is_report]]
    # PubMed grows over time: more recent years hold more of the (increasing) PMIDs.
    pub_year = np.minimum(1990 + (35 * np.sqrt((np.arange(n_pub) + 0.5) / n_pub)).astype(np.int64), 2024)
    primary = (pub_type == _TRIAL) | (pub_type == _COHORT)
    doi_only = primary & ~is_report & (rng.random(n_pub) < 0.005)
    has_doi = doi_only | (rng.random(n_pub) < 0.85)
    pub_pmid = np.where(doi_only, -1, pub_pmid)

    reg_year = rng.integers(2000, 2024, n_reg)
    first_report = np.full(n_reg, 9999)
    np.minimum.at(first_report, pub_reg[is_report], pub_year[is_report])
    reg_year = np.where(first_report < 9999, np.maximum(first_report - rng.integers(1, 5, n_reg), 1999), reg_year)

    # Reviews and their included studies.
    rev_topic = _zipf_topics(rng, n_rev)
    sizes = np.clip(np.rint(rng.lognormal(np.log(12), 0.9, n_rev)), 1, 400).astype(np.int64)
    slot_rev = np.repeat(np.arange(n_rev), sizes)
    slot_topic = np.where(rng.random(slot_rev.size) < 0.9, rev_topic[slot_rev], -1)
    popularity = 1.0 + rng.pareto(2.0, n_pub)
    slot_pub = np.empty(slot_rev.size, np.int64)
    primary_idx = np.flatnonzero(primary)
    for t in range(-1, len(TOPICS)):
        mask = slot_topic == t
        if not mask.any():
            continue
        cand = primary_idx if t < 0 else primary_idx[pub_topic[primary_idx] == t]
        if cand.size < 20:  # a rare topic at small scale: any primary study
            cand = primary_idx
        cdf = np.cumsum(popularity[cand])
        slot_pub[mask] = cand[np.minimum(np.searchsorted(cdf, rng.random(mask.sum()) * cdf[-1]), cand.size - 1)]
    pair = np.unique(slot_rev * n_pub + slot_pub)
    inc_rev, inc_pub = pair // n_pub, pair % n_pub
    inc_pmid = pub_pmid[inc_pub]
    dangle = (rng.random(pair.size) < 0.01) & (inc_pmid >= 0)
    inc_pmid = np.where(dangle, dangling[rng.integers(0, dangling.size, pair.size)], inc_pmid)
    inc_reg = np.where(dangle, -1, pub_reg[inc_pub])

    latest = np.zeros(n_rev, np.int64)
    np.maximum.at(latest, inc_rev, pub_year[inc_pub])
    rev_year = np.minimum(np.maximum(latest, 2000) + rng.integers(0, 3, n_rev), 2025)

    doi = _dois(rng, n_pub, pub_year)
    publications = _publications_table(rng, n_pub, pub_pmid, doi, has_doi, pub_topic, pub_type, pub_iv,
                                       pub_comp, pub_out, pub_n, pub_year, pub_reg, nct_ids)
    reviews = _reviews_table(rng, n_rev, rev_pmid, rev_topic, rev_year, inc_rev, inc_pmid, inc_reg,
                             np.where(inc_pmid < 0, inc_pub, -1), doi, nct_ids, reg_topic, linked)
    registry = _registry_table(rng, n_reg, nct_ids, reg_topic, reg_iv, reg_comp, reg_out, reg_n, reg_results,
                               reg_year)
    params = {"generator": "medreason_dist.literature.synthetic_corpus", "version": GENERATOR_VERSION,
              "scale": scale, "seed": seed}
    return SyntheticCorpus(reviews, publications, registry, params)


_IS_DRUG = np.array([[itype == "DRUG" for _, itype in tp.interventions] for tp in TOPICS])
_PLACEBO, _SHAM = 0, 4


def _comparators(rng: np.random.Generator, topic: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """A comparator per row: placebo only against drugs, a sham only against the rest."""
    comp = rng.integers(0, len(COMPARATORS), topic.size)
    drug = _IS_DRUG[topic, iv]
    comp[(comp == _PLACEBO) & ~drug] = _SHAM
    comp[(comp == _SHAM) & drug] = _PLACEBO
    return comp


def _dois(rng: np.random.Generator, n: int, year: np.ndarray) -> pa.Array:
    prefix = _strs(_DOI_PREFIXES[rng.integers(0, _DOI_PREFIXES.size, n)])
    journal = pa.array(["jcm", "ctr", "lancet-x", "bmjo", "ajm", "eurj", "ijcp", "trials"]).take(
        pa.array(rng.integers(0, 8, n)))
    serial = pc.utf8_lpad(_strs(np.arange(n)), 6, "0")
    return pc.binary_join_element_wise("10.", prefix, "/", journal, ".", _strs(year), ".", serial, "")


def _vocab(topic: np.ndarray, iv: np.ndarray, comp: np.ndarray, out: np.ndarray) -> dict[str, pa.Array]:
    t = pa.array(topic)
    flat_iv = pa.array([name for tp in TOPICS for name, _ in tp.interventions])
    flat_iv_cap = pa.array([_cap(name) for tp in TOPICS for name, _ in tp.interventions])
    flat_out = pa.array([o[0] for tp in TOPICS for o in tp.outcomes])
    return {
        "cond": pa.array(TOPIC_NAMES).take(t),
        "pop": pa.array([tp.population for tp in TOPICS]).take(t),
        "iv": flat_iv.take(pa.array(topic * _N_IV + iv)),
        "IV": flat_iv_cap.take(pa.array(topic * _N_IV + iv)),
        "comp": pa.array([c[0] for c in COMPARATORS]).take(pa.array(comp)),
        "out": flat_out.take(pa.array(topic * 2 + out)),
        "out2": flat_out.take(pa.array(topic * 2 + 1 - out)),
    }


_DESIGNS = ("a randomised controlled trial", "a multicentre randomised trial", "an open-label randomised trial",
            "a prospective cohort study", "a retrospective cohort study", "a population-based cohort study",
            "a narrative review", "an overview of the evidence", "a scoping review",
            "a case series", "a cross-sectional survey", "a single-centre audit")


def _publications_table(rng, n, pmid, doi, has_doi, topic, ptype, iv, comp, out, n_part, year, reg, nct_ids):
    v = _vocab(topic, iv, comp, out)
    v["design"] = pa.array(_DESIGNS).take(pa.array(ptype * 3 + rng.integers(0, 3, n)))
    v["n"] = _strs(n_part)
    base = np.array([o[2] for tp in TOPICS for o in tp.outcomes])[topic * 2 + out]
    count = base < 1  # proportions: report percentages
    x = np.abs(base) * (1 + rng.normal(0, 0.15, n))
    y = x * (1 + rng.normal(0.1, 0.1, n))
    scale100 = np.where(count, 100.0, 1.0)
    v["x"], v["y"] = _fmt1(x * scale100), _fmt1(y * scale100)
    v["unit"] = pa.array(np.where(count, "%", ""))
    pick = lambda k: rng.integers(0, k, n)  # noqa: E731
    title = _render([
        "{IV} versus {comp} in {cond}: {design}",
        "{IV} compared with {comp} for {cond}: {design}",
        "{IV} or {comp} for {cond}? Findings from {design}",
        "{IV} rather than {comp} in {cond} ({design})",
    ], pick(4), v)
    background = _render([
        "Background: The benefit of {iv} for {cond} remains uncertain.",
        "Background: Evidence on {iv} in patients with {cond} is limited.",
        "Background: Guidelines differ on {iv} for {cond}, and practice varies.",
    ], pick(3), v)
    methods = _render([
        "Methods: In {design}, {n} {pop} received {iv} or {comp}.",
        "Methods: We report {design} of {n} {pop} given {iv} or {comp}.",
        "Methods: This was {design} including {n} {pop}; exposure was {iv}, the reference {comp}.",
    ], pick(3), v)
    results = _render([
        "Results: {out} was {x}{unit} with the intervention and {y}{unit} with the comparator.",
        "Results: The primary outcome, {out}, was {x}{unit} versus {y}{unit}.",
        "Results: At follow-up, {out} reached {x}{unit} in one group and {y}{unit} in the other.",
    ], pick(3), v)
    secondary = _render([
        " {out2} did not differ clearly between groups.",
        " Differences in {out2} were small and imprecise.",
        " Among secondary outcomes, {out2} favoured the intervention.",
    ], pick(3), v)
    secondary = pc.if_else(pa.array(rng.random(n) < 0.6), secondary, "")
    extras = pa.array(["", "", " Adverse events were similar between groups.",
                       " Adherence stayed high throughout follow-up.",
                       " Effects were consistent across prespecified subgroups.",
                       " Serious adverse events were rare and balanced across arms.",
                       " Loss to follow-up was below ten percent.",
                       " Sensitivity analyses excluding protocol deviations gave similar estimates.",
                       " Quality of life scores improved modestly in both groups.",
                       " Cost data were collected and will be reported separately."])
    extra = pc.binary_join_element_wise(*(extras.take(pa.array(pick(len(extras)))) for _ in range(3)), "")
    conclusion = _render([
        "Conclusions: {IV} may improve {out} in {cond}.",
        "Conclusions: {IV} did not clearly change {out} in {cond}.",
        "Conclusions: {IV} merits larger studies that report {out} in {cond}.",
    ], pick(3), v)
    nct = pc.if_else(pa.array(reg >= 0), nct_ids.take(pa.array(np.maximum(reg, 0))), pa.nulls(n, _S))
    registration = pc.fill_null(pc.binary_join_element_wise(" Trial registration: ", nct, ".", ""), "")
    abstract = pc.binary_join_element_wise(background, " ", methods, " ", results, secondary, extra, " ", conclusion,
                                           registration, "")

    has_full = rng.random(n) < 0.15
    full_idx = pa.array(np.flatnonzero(has_full))
    fv = {k: a.take(full_idx) for k, a in v.items()}
    m = len(full_idx)
    age = _fmt1(rng.normal(58, 9, m).clip(20, 90))
    sd = _fmt1(rng.normal(9, 2, m).clip(3, 20))
    fv.update(age=age, sd=sd, tf=pa.array(_TIME_FRAMES).take(pa.array(rng.integers(0, len(_TIME_FRAMES), m))))
    intro = _render([
        "Introduction\n{cond} is common and costly. Whether {iv} improves {out} has been debated, and "
        "trials have compared it with {comp} in different settings.",
        "Introduction\nFor people with {cond}, the evidence on {iv} is mixed: effects on {out} differ "
        "between studies, and few compared it directly with {comp}.",
    ], rng.integers(0, 2, m), fv)
    methods_p = _render([
        "Methods\nWe conducted {design}. Eligible participants were {pop}. They received {iv} or {comp}. "
        "The primary outcome was {out}, assessed at {tf}; {out2} was secondary.",
        "Methods\nThis is {design} of {pop}. Participants were allocated to {iv} or {comp}. We measured {out} "
        "at {tf}, and {out2} as a secondary outcome.",
    ], rng.integers(0, 2, m), fv)
    results_p = _render([
        "Results\nWe included {n} participants (mean age {age} years, SD {sd}). {out} was {x}{unit} with {iv} "
        "and {y}{unit} with {comp}.",
        "Results\nOf {n} participants analysed (mean age {age}, SD {sd} years), {out} was {x}{unit} among those given "
        "{iv} and {y}{unit} among those given {comp}.",
    ], rng.integers(0, 2, m), fv)
    discussion = _render([
        "Discussion\nThese findings add to the evidence on {iv}. The difference in {out} seen here in {cond} "
        "should be read alongside the study's size.",
        "Discussion\nAgainst its comparator, {iv} showed a modest difference in {out}. Replication in broader "
        "groups of people with {cond} is needed.",
    ], rng.integers(0, 2, m), fv)
    limits = pa.array(["", "\n\nLimitations\nFollow-up was short and outcome assessors were not always blinded.",
                       "\n\nLimitations\nThe sample came from few centres, which limits generalisability."]
                      ).take(pa.array(rng.integers(0, 3, m)))
    safety = pa.array(["", "", "\n\nSafety\nAdverse events were recorded at every visit and graded by a blinded "
                       "committee. Most were mild; discontinuations for adverse events were uncommon and similar "
                       "between groups. No unexpected safety signals emerged during follow-up.",
                       "\n\nStatistical analysis\nAnalyses followed the intention-to-treat principle. Continuous "
                       "outcomes were compared with linear models adjusted for baseline values and binary outcomes "
                       "with log-binomial regression; missing data were handled by multiple imputation."]
                      ).take(pa.array(rng.integers(0, 4, m)))
    body = pc.binary_join_element_wise(intro, "\n\n", methods_p, safety, "\n\n", results_p, "\n\n",
                                       discussion, limits, "")
    full_text = pc.replace_with_mask(pa.nulls(n, _S), pa.array(has_full), body)

    return pa.table({
        "pmid": pc.if_else(pa.array(pmid >= 0), _strs(pmid), pa.nulls(n, _S)),
        "doi": pc.if_else(pa.array(has_doi), doi, pa.nulls(n, _S)),
        "title": title,
        "abstract": abstract,
        "full_text": full_text,
        "topic": v["cond"],
        "year": pa.array(year, pa.int16()),
        "nct_id": nct,
        "publication_type": pa.array(PUBLICATION_TYPES).take(pa.array(ptype)),
    }, schema=PUBLICATIONS_SCHEMA)


def _list_column(rows: np.ndarray, n_rows: int, values: pa.Array) -> pa.ListArray:
    """A list<string> column from (row, value) pairs sorted by row."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


_INCLUSION = ("Participants are {pop}", "Compares {iv} with {comp} or another control",
              "Reports {out} or {out2}", "Randomised controlled trial or prospective cohort study",
              "Follow-up of at least {weeks} weeks")
_EXCLUSION = ("Case reports, editorials, letters or conference abstracts", "Studies in animals or cell lines",
              "Fewer than {k} participants", "Duplicate report of an already included cohort",
              "No outcome data that can be extracted")
_REVIEW_TITLES = ("{IV} versus {comp} for {cond}: a systematic review and meta-analysis",
                  "Efficacy and safety of {iv} in {pop}: a meta-analysis of randomised trials",
                  "{OUT} with {iv} in {cond}: a systematic review",
                  "Is {iv} better than {comp} for {cond}? A systematic review and network meta-analysis")


# Per-review qualifiers: without them the reviews of one topic asked a handful of identical
# questions, and near-duplicate removal rightly folded most of them into one.
_AGES = ("aged 18 to 65", "aged 65 or older", "of any age", "aged 40 to 75", "aged 50 or older", "aged under 60",
         "aged 18 or older", "aged 30 to 80")
_SETTINGS = ("in primary care", "in hospital", "in outpatient clinics", "in community settings",
             "in specialist centres", "in low- and middle-income countries", "in high-income countries",
             "in any setting")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _label(text: str) -> str:
    """A registry name: no leading article, capitalised ("a sham procedure" -> "Sham procedure")."""
    return _cap(re.sub(r"^(a|an) ", "", text))


def _reviews_table(rng, n, pmid, topic, year, inc_rev, inc_pmid, inc_reg, inc_doi_pub, doi, nct_ids,
                   reg_topic, linked):
    keep = inc_pmid >= 0
    included_pmids = _list_column(inc_rev[keep], n, _strs(inc_pmid[keep]))
    by_doi = inc_doi_pub >= 0
    included_dois = _list_column(inc_rev[by_doi], n, doi.take(pa.array(inc_doi_pub[by_doi])))
    # Registry records: those of included publications, plus unpublished records of the topic.
    n_reg = len(nct_ids)
    rev_reg = [inc_rev[inc_reg >= 0] * n_reg + inc_reg[inc_reg >= 0]]
    unpublished = np.setdiff1d(np.arange(n_reg), linked)
    extra_rev = np.flatnonzero(rng.random(n) < 0.3)
    for t in np.unique(topic[extra_rev]):
        cand = unpublished[reg_topic[unpublished] == t]
        revs = extra_rev[topic[extra_rev] == t]
        if cand.size:
            revs = np.repeat(revs, rng.integers(1, 3, revs.size))
            rev_reg.append(revs * n_reg + cand[rng.integers(0, cand.size, revs.size)])
    pairs = np.unique(np.concatenate(rev_reg))
    included_ncts = _list_column(pairs // n_reg, n, nct_ids.take(pa.array(pairs % n_reg)))

    ivs, outs = rng.integers(0, _N_IV, n), rng.integers(0, 2, n)
    comps = _comparators(rng, topic, ivs)
    title_pick, n_inc, n_exc = rng.integers(0, 4, n), rng.integers(2, 5, n), rng.integers(1, 4, n)
    weeks, min_n = rng.choice([4, 8, 12, 24, 52], n), rng.choice([10, 20, 30, 50, 100], n)
    ages, settings, when = rng.integers(0, len(_AGES), n), rng.integers(0, len(_SETTINGS), n), \
        rng.integers(0, len(_TIME_FRAMES), n)
    titles, picos, terms, criteria = [], [], [], []
    for i in range(n):
        tp = TOPICS[topic[i]]
        iv, comp = tp.interventions[ivs[i]][0], COMPARATORS[comps[i]][0]
        out, out2 = tp.outcomes[outs[i]][0], tp.outcomes[1 - outs[i]][0]
        pop = f"{tp.population} {_AGES[ages[i]]} {_SETTINGS[settings[i]]}"
        words = {"iv": iv, "IV": _cap(iv), "comp": comp, "cond": tp.name, "pop": pop, "out": out,
                 "OUT": _cap(out), "out2": out2, "weeks": weeks[i], "k": min_n[i]}
        titles.append(_REVIEW_TITLES[title_pick[i]].format(**words))
        picos.append({"P": _cap(pop), "I": _cap(iv), "C": _cap(comp) if comps[i] != 3 else "No treatment",
                      "O": f"{_cap(out)} and {out2} at {_TIME_FRAMES[when[i]]}"})
        terms.append({"P": [tp.name, tp.population.split(" with ")[0]], "I": [iv], "C": [comp], "O": [out, out2]})
        criteria.append([{"kind": "inclusion", "text": c.format(**words)} for c in _INCLUSION[:n_inc[i]]]
                        + [{"kind": "exclusion", "text": c.format(**words)} for c in _EXCLUSION[:n_exc[i]]])
    return pa.table({
        "review_id": pc.binary_join_element_wise("SR", pc.utf8_lpad(_strs(np.arange(1, n + 1)), 6, "0"), ""),
        "pmid": _strs(pmid),
        "title": pa.array(titles, _S),
        "topic": pa.array(TOPIC_NAMES).take(pa.array(topic)),
        "pico": pa.array(picos, PICO_TYPE),
        "pico_terms": pa.array(terms, PICO_TERMS_TYPE),
        "criteria": pa.array(criteria, pa.list_(CRITERION_TYPE)),
        "included_pmids": included_pmids,
        "included_nct_ids": included_ncts,
        "included_dois": included_dois,
        "year": pa.array(year, pa.int16()),
    }, schema=REVIEWS_SCHEMA)


def _param_type(unit: str) -> tuple[str, str | None]:
    if unit == "Participants":
        return "COUNT_OF_PARTICIPANTS", None
    if unit == "months":
        return "MEDIAN", "95% Confidence Interval"
    return "MEAN", "STANDARD_DEVIATION"


def _measure(z, title, unit, base, groups, sizes, kind=None, time_frame=None, effect=0.08) -> dict:
    """One CT.gov measure with a value per group; ``z`` yields standard normal draws."""
    param, dispersion = _param_type(unit)
    measurements = []
    for g, (gid, size) in enumerate(zip(groups, sizes)):
        value = abs(base) * (1 + effect * g + (0.12 if effect else 0.03) * next(z))
        if param == "COUNT_OF_PARTICIPANTS":
            measurements.append({"groupId": gid, "value": str(int(min(size, round(size * min(value, 1.0)))))})
        elif param == "MEDIAN":
            measurements.append({"groupId": gid, "value": f"{value:.1f}", "lowerLimit": f"{value * 0.8:.1f}",
                                 "upperLimit": "NA" if next(z) > 1.04 else f"{value * 1.25:.1f}"})
        else:
            measurements.append({"groupId": gid, "value": f"{value:.1f}", "spread": f"{abs(value) * 0.25:.1f}"})
    measure = {"title": title, "paramType": param, "unitOfMeasure": unit}
    if kind:
        measure = {"type": kind, **measure, "timeFrame": time_frame, "reportingStatus": "POSTED"}
    if dispersion:
        measure["dispersionType"] = dispersion
    if kind:
        measure["groups"] = [{"id": gid, "title": t} for gid, t in groups.items()]
        measure["denoms"] = [{"units": "Participants",
                              "counts": [{"groupId": gid, "value": str(s)} for gid, s in zip(groups, sizes)]}]
    measure["classes"] = [{"categories": [{"measurements": measurements}]}]
    return measure


def _registry_table(rng, n, nct_ids, topic, ivs, comps, outs, enrol, has_results, start_year):
    protocols, results, titles, conditions = [], [], [], []
    nct_list = nct_ids.to_pylist()
    three_arms = rng.random(n) < 0.2
    status_pick = rng.integers(0, len(_STATUS), n)
    tf_pick = rng.integers(0, len(_TIME_FRAMES), n)
    noise = rng.standard_normal((n, 20))  # per row: at most 19 draws for its results section
    for i in range(n):
        tp = TOPICS[topic[i]]
        iv, iv_type = tp.interventions[ivs[i]]
        comp, comp_arm, comp_type = COMPARATORS[comps[i]]
        (out, unit, base), (out2, unit2, base2) = tp.outcomes[outs[i]], tp.outcomes[1 - outs[i]]
        label, comp_label = _label(iv), _label(comp)
        arms = [(label, "EXPERIMENTAL", iv, iv_type)]
        if three_arms[i]:
            arms = [(f"{label}, lower dose" if iv_type == "DRUG" else f"{label}, intensive", "EXPERIMENTAL", iv,
                     iv_type)] + arms
        arms.append((comp_label, comp_arm, comp, comp_type))
        tf = _TIME_FRAMES[tf_pick[i]]
        brief = f"{label} versus {comp} in {tp.population}"
        status = "COMPLETED" if has_results[i] else _STATUS[status_pick[i]]
        drug = iv_type == "DRUG"
        interventions = {}
        for arm_label, _, name, itype in arms:
            if itype:
                interventions.setdefault((itype, name), []).append(arm_label)
        protocol = {
            "identificationModule": {"nctId": nct_list[i], "briefTitle": brief,
                                     "officialTitle": f"A Randomised Trial of {label} Compared With "
                                                      f"{comp_label} in {tp.population}"},
            "statusModule": {"overallStatus": status,
                             "startDateStruct": {"date": f"{start_year[i]}-{1 + i % 12:02d}"},
                             "completionDateStruct": {"date": f"{start_year[i] + 2 + i % 3}-{1 + i * 7 % 12:02d}"}},
            "descriptionModule": {"briefSummary": f"This trial tests whether {iv} improves {out} in "
                                                  f"{tp.population} compared with {comp}."},
            "conditionsModule": {"conditions": [_cap(tp.name)], "keywords": [iv, out]},
            "designModule": {
                "studyType": "INTERVENTIONAL",
                "phases": [("PHASE2", "PHASE3", "PHASE4")[i % 3]] if drug else ["NA"],
                "designInfo": {"allocation": "RANDOMIZED", "interventionModel": "PARALLEL",
                               "primaryPurpose": "TREATMENT",
                               "maskingInfo": {"masking": "DOUBLE" if comp == "placebo" else "NONE"}},
                "enrollmentInfo": {"count": int(enrol[i]), "type": "ACTUAL" if status == "COMPLETED" else "ESTIMATED"},
            },
            "armsInterventionsModule": {
                "armGroups": [{"label": a, "type": t, "description": f"Participants receive {name}.",
                               **({"interventionNames": [f"{it.title()}: {_label(name)}"]} if it else {})}
                              for a, t, name, it in arms],
                "interventions": [{"type": it, "name": _label(name), "armGroupLabels": labels}
                                  for (it, name), labels in interventions.items()],
            },
            "outcomesModule": {"primaryOutcomes": [{"measure": _cap(out), "timeFrame": tf}],
                               "secondaryOutcomes": [{"measure": _cap(out2), "timeFrame": tf}]},
            "eligibilityModule": {
                "eligibilityCriteria": f"Inclusion Criteria:\n\n* {_cap(tp.population)}\n* Age 18 years or older"
                                       f"\n\nExclusion Criteria:\n\n* Previous treatment with {iv}\n* Pregnancy",
                "sex": "ALL", "minimumAge": "18 Years"},
        }
        protocols.append(json.dumps(protocol, separators=(",", ":")))
        titles.append(brief)
        conditions.append([_cap(tp.name)])
        if not has_results[i]:
            results.append(None)
            continue
        k = len(arms)
        total = int(enrol[i])
        sizes = [max(1, total * (g + 1) // k - total * g // k) for g in range(k)]
        bg = {f"BG{g:03d}": a[0] for g, a in enumerate(arms)}
        og = {f"OG{g:03d}": a[0] for g, a in enumerate(arms)}
        z = iter(noise[i])
        age = _measure(z, "Age, Continuous", "years", 58 + 6 * next(z), bg, sizes, effect=0.0)
        female = [min(s, max(0, round(s * (0.5 + 0.05 * next(z))))) for s in sizes]
        sex = {"title": "Sex: Female, Male", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
               "classes": [{"categories": [
                   {"title": "Female", "measurements": [{"groupId": g, "value": str(f)} for g, f in zip(bg, female)]},
                   {"title": "Male", "measurements": [{"groupId": g, "value": str(s - f)}
                                                      for g, s, f in zip(bg, sizes, female)]}]}]}
        result = {
            "baselineCharacteristicsModule": {
                "groups": [{"id": g, "title": t} for g, t in bg.items()] + [{"id": f"BG{k:03d}", "title": "Total"}],
                "denoms": [{"units": "Participants", "counts": [{"groupId": g, "value": str(s)}
                                                               for g, s in zip(bg, sizes)]}],
                "measures": [age, sex]},
            "outcomeMeasuresModule": {"outcomeMeasures": [
                _measure(z, _cap(out), unit, base, og, sizes, "PRIMARY", tf),
                _measure(z, _cap(out2), unit2, base2, og, sizes, "SECONDARY", tf)]},
        }
        results.append(json.dumps(result, separators=(",", ":")))
    return pa.table({
        "nct_id": nct_ids, "brief_title": pa.array(titles, _S), "topic": pa.array(TOPIC_NAMES).take(pa.array(topic)),
        "conditions": pa.array(conditions, _LS), "has_results": pa.array(has_results, pa.bool_()),
        "protocol_section": pa.array(protocols, _S), "results_section": pa.array(results, _S),
    }, schema=REGISTRY_SCHEMA)


# --------------------------------------------------------------------------------------------
# Output


def write_corpus(corpus: SyntheticCorpus, out_uri: str,
                 options: storage.StorageOptions | None = None) -> dict[str, storage.Manifest]:
    """``reviews/``, ``publications/`` and ``registry/`` under ``out_uri`` as committed datasets."""
    extra = {**corpus.params, "counts": corpus.counts()}
    return {name: storage.write_table(storage.join(out_uri, name), getattr(corpus, name), stage=STAGE,
                                      config_hash=storage.config_hash_of(corpus.params), extra=extra,
                                      options=options)
            for name in ("reviews", "publications", "registry")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medreason_dist.literature.synthetic_corpus",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder or storage URI to write the three datasets under")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    corpus = generate_corpus(args.scale, seed=args.seed)
    write_corpus(corpus, args.out)
    print(json.dumps({**corpus.counts(), "scale": args.scale, "seed": args.seed, "out": storage.check_uri(args.out),
                      "seconds": round(time.perf_counter() - start, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
