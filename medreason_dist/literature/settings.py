"""Configuration of the literature-mining (LEADS) pipeline: the ``leads:`` section of a config.

Inputs name a review the way users keep one: a protocol file, candidate files in any of the
supported formats, a folder of full texts, and (for evaluation) gold labels and gold extraction
values. ``reviews_dir`` replaces all of them with a folder of published reviews in the
TrialMind-SLR layout (several reviews at once; their included studies are each other's
negatives). Paths take ``packaged:<rel>`` for the data shipped in the package.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medreason_dist.llm.settings import StepSampling

FIXTURE = "fixture"  # a base URL that means: serve the review's own records on loopback (demo, tests)
_KNEE = "packaged:leads/knee_oa_exercise"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReviewInputs(_Section):
    protocol: str = Field(f"{_KNEE}/protocol.yaml", description="Protocol YAML/JSON: title, PICO, criteria, fields.")
    candidates: list[str] = Field(
        default_factory=lambda: [f"{_KNEE}/candidates.ris", f"{_KNEE}/candidates.csv", f"{_KNEE}/pubmed.xml"],
        description="Candidate record files: RIS, CSV (ASReview columns), PubMed XML, ClinicalTrials.gov JSON.")
    fulltexts: str | None = Field(f"{_KNEE}/fulltexts",
                                  description="Folder of <pmid>.md / .txt full texts (extraction, full-text screening).")
    gold_labels: str | None = Field(f"{_KNEE}/gold_labels.csv",
                                    description="CSV with pmid, included (1/0): the reviewers' decisions.")
    gold_extraction: str | None = Field(f"{_KNEE}/gold_extraction.json",
                                        description="JSON {pmid: {characteristics: {...}, ...}} for extraction accuracy.")


class SearchSettings(_Section):
    sampling: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=320, repetition_penalty=1.1))


class ScreenSettings(_Section):
    mode: Literal["title_abstract", "full_text"] = Field(
        "title_abstract", description="full_text screens records that have a full text on it, the rest on the abstract.")
    threshold: float = Field(0.5, ge=-1.0, le=1.0, description="Score at or above which a record is predicted included.")
    max_chars: int = Field(3000, ge=200, description="Record text shown to the model, cut beyond this.")
    sampling: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=640, repetition_penalty=1.05))


class ExtractSettings(_Section):
    chunk_tokens: int = Field(900, ge=64, description="Longest text chunk sent in one request (prompt tokens).")
    sampling: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=900, repetition_penalty=1.05))


class PubMedSettings(_Section):
    base_url: str = Field("https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
                          description=f"E-utilities root; '{FIXTURE}' serves the review's records on 127.0.0.1.")
    api_key_env: str = Field("NCBI_API_KEY", description="Environment variable holding the key (never the key).")
    email: str | None = None
    max_records: int = Field(500, ge=1, description="Records fetched per query at most.")


class CtGovSettings(_Section):
    base_url: str = Field("https://clinicaltrials.gov/api/v2",
                          description=f"API v2 root; '{FIXTURE}' serves generated fixture trials on 127.0.0.1.")
    page_size: int = Field(100, ge=1, le=1000)
    max_studies: int = Field(500, ge=1)


class LeadsEvalSettings(_Section):
    recall_at: list[int] = Field(default_factory=lambda: [10, 20], description="k values of recall@k.")
    number_tolerance: float = Field(0.05, ge=0.0, description="Relative tolerance for numeric fields.")


class CurateSettings(_Section):
    """The instruction-data curation job (``leads_curate``, ``jobs/leads_curate.py``)."""

    corpus: str = Field("packaged:leads/instruct_sample",
                        description="Folder holding reviews/, publications/ and registry/ (committed datasets, Parquet "
                                    "folders or <name>.parquet files), e.g. the synthetic corpus's output.")
    negatives_per_positive: float = Field(1.0, ge=0.0, description="Screening negatives drawn per included study.")
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of reviews held out (with all their studies).")
    decontaminate_against: list[str] = Field(
        default_factory=lambda: ["auto"],
        description="Evaluation reviews no row may touch: TrialMind-SLR-layout folders, or 'auto' = the configured "
                    "leads.review and leads.reviews_dir plus ../shared/data/leads/trialmind_slr when present.")
    near_duplicate_threshold: float = Field(0.8, gt=0.0, le=1.0, description="MinHash Jaccard estimate that "
                                                                             "makes two rows near duplicates.")
    minhash_hashes: int = Field(16, ge=2, le=256, description="MinHash values per row (a multiple of minhash_bands).")
    minhash_bands: int = Field(4, ge=1, description="LSH bands; rows sharing one band are compared.")
    shingle_words: int = Field(5, ge=1, le=20, description="Words per shingle.")
    tokenizer: str | None = Field("student", description="Token-length statistics with this tokenizer ('student' "
                                                         "= sft.model's); null: word counts only.")
    token_sample_rows: int = Field(2000, ge=1, description="Rows per task tokenized for the token statistics.")
    screen_max_chars: int = Field(3000, ge=200, description="Abstract characters in a screening instruction.")
    extract_max_chars: int = Field(6000, ge=200, description="Publication characters in an extraction instruction.")


class LeadsTrainSettings(_Section):
    """Fine-tuning the literature-mining student on the curated train split (the project's SFT recipe,
    configured by the ``sft:`` section; this section only chooses the data)."""

    mixture: dict[str, float] = Field(
        default_factory=lambda: {"search": 1.0, "screening": 1.0, "characteristics": 1.0, "participants": 1.0,
                                 "arms": 1.0, "results": 1.0},
        description="Relative share of each task in the training rows (0 leaves a task out).")
    max_rows: int | None = Field(240, ge=1, description="Training rows drawn by the mixture; null = every row.")


class ModelEvalSettings(_Section):
    """Base vs fine-tuned student on the held-out split, all six tasks."""

    per_task: int = Field(8, ge=1, description="Test rows per task (a seeded choice).")
    decoding: Literal["schema", "free"] = Field(
        "schema", description="schema: answers are held to each task's JSON schema by the engine, so the scores "
                              "measure content; free: plain generation, so they also measure whether the model "
                              "learned the format.")
    max_tokens: int = Field(320, ge=16, description="Longest answer generated.")
    max_prompt_chars: int = Field(4000, ge=200, description="Instructions longer than this are left out (counted).")


class LeadsConfig(_Section):
    """Literature mining: search queries, screening and extraction for systematic reviews."""

    review: ReviewInputs = Field(default_factory=ReviewInputs)
    reviews_dir: str | None = Field(
        None, description="Folder of published reviews (TrialMind-SLR layout); replaces leads.review.")
    limit: int | None = Field(None, ge=1, description="Only the first N candidate records, those with a full text "
                                                      "first (smoke runs).")
    max_candidates_per_review: int | None = Field(
        None, ge=2, description="Published reviews: screen this many candidates per review (up to a quarter its "
                                "own included studies, the rest other reviews'), drawn with run.seed.")
    batch_rows: int = Field(16, ge=1, description="Records per shard (the resume granularity).")
    search: SearchSettings = Field(default_factory=SearchSettings)
    execute: bool = Field(False, description="Run the generated queries through the PubMed and CT.gov clients.")
    screen: ScreenSettings = Field(default_factory=ScreenSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    pubmed: PubMedSettings = Field(default_factory=PubMedSettings)
    ctgov: CtGovSettings = Field(default_factory=CtGovSettings)
    eval: LeadsEvalSettings = Field(default_factory=LeadsEvalSettings)
    curate: CurateSettings = Field(default_factory=CurateSettings)
    train: LeadsTrainSettings = Field(default_factory=LeadsTrainSettings)
    model_eval: ModelEvalSettings = Field(default_factory=ModelEvalSettings)

    @field_validator("reviews_dir")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("reviews_dir is blank; leave it null to use leads.review")
        return v
