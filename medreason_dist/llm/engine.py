"""The one door to LLMs: every stage calls :func:`run_llm`; only this module talks to vLLM.

Pipeline built on a Ray Dataset (all lazy, streaming)::

    input rows
      -> PromptTokenizer (map_batches, actor holding the model's tokenizer):
           build_prompt(row) -> chat messages -> chat template -> token ids;
           rows whose prompt cannot be built or does not fit the context are marked
      -> ray.data.llm processor (vLLMEngineProcessorConfig, ServeDeploymentProcessorConfig
           or HttpRequestProcessorConfig, built with build_processor): marked rows carry
           ``__inference_error__`` and so bypass the engine; the rest are generated,
           JSON-schema constrained when the stage gives an output model. cpu/gpu profiles
           use the run's shared engine (a Ray Serve deployment, see serve.py) when one is up
           or being shared, else an engine that lives for this call
      -> finalize (map): validate the text with the same pydantic model and emit
           original columns + {step}_result / _error / _error_detail / _input_tokens /
           _output_tokens

No row is dropped: every input row comes out exactly once, either with a result or with
an error reason from :data:`ERROR_REASONS`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from medreason_dist.llm.serve import ENGINE_ERROR_COLUMN as _C_ENGINE_ERROR
from medreason_dist.llm.serve import METHOD as _SERVE_METHOD
from medreason_dist.llm.settings import LLMSettings
from medreason_dist.llm.vllm_spec import engine_args, engine_model_source, vllm_engine_spec

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

ChatMessages = list[dict[str, str]]
PromptBuilder = Callable[[dict[str, Any]], ChatMessages]

# Why a row has no result.
PROMPT_ERROR = "prompt_error"  # build_prompt raised or returned something that is not chat messages
PROMPT_TOO_LONG = "prompt_too_long"  # prompt tokens + max_tokens exceed max_model_len
ENGINE_ERROR = "engine_error"  # the engine / endpoint failed for this row
EMPTY_OUTPUT = "empty_output"  # free-text step produced nothing
INVALID_JSON = "invalid_json"  # structured step produced text that is not JSON
OUTPUT_TRUNCATED = "output_truncated"  # not JSON because generation hit max_tokens
SCHEMA_VALIDATION = "schema_validation"  # JSON, but not valid for the output model
ERROR_REASONS = (
    PROMPT_ERROR,
    PROMPT_TOO_LONG,
    ENGINE_ERROR,
    EMPTY_OUTPUT,
    INVALID_JSON,
    OUTPUT_TRUNCATED,
    SCHEMA_VALIDATION,
)

DEFAULT_MAX_TOKENS = 256
_DETAIL_CHARS = 500
_STEP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# Internal columns added by this module.
_C_MESSAGES = "__mr_messages"  # chat messages as JSON text
_C_PROMPT_IDS = "__mr_prompt_ids"
_C_PROMPT_TOKENS = "__mr_prompt_tokens"
_C_REJECT = "__mr_reject"
_C_REJECT_DETAIL = "__mr_reject_detail"
_INTERNAL_PREFIX = "__mr_"
# Shared-engine path (ray.data.llm's ServeDeploymentStage): the stage reads ``method``,
# ``dtype`` and ``request_kwargs`` from rows and writes ``time_taken``. Input columns with
# these names are saved under _C_SAVED_PREFIX by the preprocess and put back by finalize_row.
_C_SERVE = "__mr_serve"
_C_SAVED_PREFIX = "__mr_saved__"
SERVE_STAGE_COLUMNS = ("method", "dtype", "request_kwargs", "time_taken")

# Column names that ray.data.llm stages read, write or pop from rows; an input column with
# one of these names would be consumed or overwritten, so it is refused up front.
RESERVED_COLUMNS = frozenset(
    {
        "__data",
        "__idx_in_batch",
        "__inference_error__",
        "prompt",
        "tokenized_prompt",
        "messages",
        "sampling_params",
        "pooling_params",
        "model",
        "image",
        "multimodal_data",
        "mm_processor_kwargs",
        "multimodal_uuids",
        "tokenization_kwargs",
        "payload",
        "http_response",
        "generated_text",
        "generated_tokens",
        "num_generated_tokens",
        "num_input_tokens",
        "prompt_token_ids",
        "embeddings",
        "metrics",
        "logprobs",
        "prompt_logprobs",
        "request_id",
        "batch_uuid",
        "time_taken_llm",
        "params",
    }
)


def output_columns(step: str) -> dict[str, str]:
    """Names of the columns :func:`run_llm` adds for ``step``."""
    return {
        "result": f"{step}_result",
        "error": f"{step}_error",
        "error_detail": f"{step}_error_detail",
        "input_tokens": f"{step}_input_tokens",
        "output_tokens": f"{step}_output_tokens",
    }


# --------------------------------------------------------------------------------------------
# Pure pieces (unit-tested without an engine)


def _clip(text: Any) -> str:
    text = str(text)
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def check_messages(messages: Any) -> ChatMessages:
    """Validate what a prompt builder returned: a non-empty list of {role, content} strings."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"prompt builder must return a non-empty list of messages, got {type(messages).__name__}")
    clean: ChatMessages = []
    for m in messages:
        if not isinstance(m, dict) or set(m) - {"role", "content"} or not {"role", "content"} <= set(m):
            raise ValueError(f"each message must be a dict with exactly 'role' and 'content': {m!r}")
        if m["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"unknown message role {m['role']!r}")
        if not isinstance(m["content"], str):
            raise ValueError("message content must be a string")
        clean.append({"role": m["role"], "content": m["content"]})
    return clean


def length_rejection(prompt_tokens: int, max_tokens: int, max_model_len: int) -> str | None:
    """Detail text when a prompt leaves the engine no room for ``max_tokens``; else None."""
    if prompt_tokens + max_tokens > max_model_len:
        return (
            f"prompt has {prompt_tokens} tokens; with max_tokens={max_tokens} it exceeds "
            f"max_model_len={max_model_len}"
        )
    return None


def _strip_code_fence(text: str) -> str:
    s = text.strip()
    if s.startswith("```"):
        s = s[3:]
        if s.lower().startswith("json"):
            s = s[4:]
        if s.rstrip().endswith("```"):
            s = s.rstrip()[:-3]
    return s.strip()


@dataclass(frozen=True)
class Interpretation:
    result: str | None
    error: str | None
    detail: str | None


def interpret_output(
    text: str | None,
    output_model: type[BaseModel] | None,
    *,
    truncated: bool = False,
) -> Interpretation:
    """Turn generated text into a result or an error reason.

    Structured steps: the text must be JSON (a code fence around it is tolerated, for hosted
    endpoints without schema enforcement) and must validate against ``output_model``; the
    result is the model's canonical JSON. Free-text steps: any non-blank text is the result.
    ``truncated`` says the engine stopped at max_tokens, which explains invalid JSON.
    """
    text = text or ""
    if output_model is None:
        if not text.strip():
            return Interpretation(None, EMPTY_OUTPUT, "the model produced no text")
        return Interpretation(text, None, None)
    try:
        data = json.loads(_strip_code_fence(text))
    except ValueError as e:
        reason = OUTPUT_TRUNCATED if truncated else INVALID_JSON
        return Interpretation(None, reason, _clip(f"{e}; text: {text!r}"))
    try:
        obj = output_model.model_validate(data)
    except ValidationError as e:
        return Interpretation(None, SCHEMA_VALIDATION, _clip(e.errors(include_url=False, include_input=False)))
    return Interpretation(obj.model_dump_json(), None, None)


def json_schema_of(output_model: type[BaseModel]) -> dict[str, Any]:
    return output_model.model_json_schema()


def _engine_outcome(row: dict[str, Any], profile: str, max_tokens: int) -> tuple[str | None, str | None, bool, int, int]:
    """(text, engine error, truncated, input tokens, output tokens) from a processor output row."""
    # A request the shared engine could not serve comes back as _C_ENGINE_ERROR (serve.py).
    err = row.get("__inference_error__") or row.get(_C_ENGINE_ERROR) or ""
    if profile == "http":
        resp = row.get("http_response") or {}
        if err:
            return None, err, False, 0, 0
        if not isinstance(resp, dict) or resp.get("error") or not resp.get("choices"):
            detail = resp.get("error") if isinstance(resp, dict) and resp.get("error") else resp
            return None, f"endpoint returned no choices: {detail}", False, 0, 0
        choice = resp["choices"][0] or {}
        text = ((choice.get("message") or {}).get("content")) or ""
        usage = resp.get("usage") or {}
        n_in = int(usage.get("prompt_tokens") or 0)
        n_out = int(usage.get("completion_tokens") or 0)
        return text, None, choice.get("finish_reason") == "length", n_in, n_out
    if err:
        return None, err, False, 0, 0
    n_out = int(row.get("num_generated_tokens") or 0)
    n_in = int(row.get("num_input_tokens") or 0)
    return row.get("generated_text") or "", None, n_out >= max_tokens, n_in, n_out


def finalize_row(
    row: dict[str, Any],
    *,
    step: str,
    profile: str,
    output_model: type[BaseModel] | dict[str, type[BaseModel]] | None,
    max_tokens: int,
    model_key: str | None = None,
) -> dict[str, Any]:
    """Build the output row: original columns plus the step's result columns."""
    cols = output_columns(step)
    if isinstance(output_model, dict):  # one answer model per value of the row's model_key column
        output_model = output_model[row[model_key]]
    reject = row.get(_C_REJECT)
    if reject:
        result, error, detail, n_in, n_out = None, reject, row.get(_C_REJECT_DETAIL), 0, 0
    else:
        text, engine_err, truncated, n_in, n_out = _engine_outcome(row, profile, max_tokens)
        if engine_err:
            result, error, detail = None, ENGINE_ERROR, _clip(engine_err)
        else:
            it = interpret_output(text, output_model, truncated=truncated)
            result, error, detail = it.result, it.error, it.detail
    out = {k: v for k, v in row.items() if k not in RESERVED_COLUMNS and not k.startswith(_INTERNAL_PREFIX)}
    if row.get(_C_SERVE):
        # Columns the serve stage used or wrote: the input's own values come back, in place.
        for name in SERVE_STAGE_COLUMNS:
            saved = _C_SAVED_PREFIX + name
            if saved in row:
                out[name] = row[saved]
            else:
                out.pop(name, None)
    out[cols["result"]] = result
    out[cols["error"]] = error
    out[cols["error_detail"]] = detail
    out[cols["input_tokens"]] = n_in
    out[cols["output_tokens"]] = n_out
    return out


def usage_summary(table: pa.Table, step: str, settings: LLMSettings | None = None) -> dict[str, Any]:
    """Counts for a manifest: rows, ok rows, rejects by reason, token totals, estimated cost."""
    cols = output_columns(step)
    errors = table.column(cols["error"]).to_pylist() if table.num_rows else []
    rejects = Counter(e for e in errors if e)
    n_in = int(pc.sum(table.column(cols["input_tokens"])).as_py() or 0) if table.num_rows else 0
    n_out = int(pc.sum(table.column(cols["output_tokens"])).as_py() or 0) if table.num_rows else 0
    summary: dict[str, Any] = {
        "rows": table.num_rows,
        "ok": table.num_rows - sum(rejects.values()),
        "rejects": dict(sorted(rejects.items())),
        "input_tokens": n_in,
        "output_tokens": n_out,
    }
    if settings is not None:
        summary["model"] = settings.served_model_name
        summary["cost_usd"] = settings.estimate_cost_usd(n_in, n_out)
    return summary


# --------------------------------------------------------------------------------------------
# Prompt step: chat template + token counting in an actor that holds the tokenizer


def _approx_tokens(messages: ChatMessages) -> int:
    return math.ceil(sum(len(m["content"]) + 8 for m in messages) / 4)


class PromptTokenizer:
    """Ray Data callable class: builds prompts, applies the chat template, counts tokens."""

    def __init__(
        self,
        *,
        step: str,
        build_prompt: PromptBuilder,
        tokenizer_ref: str | None,
        cache_dir: str,
        max_model_len: int,
        max_tokens: int,
        need_ids: bool,
    ):
        self.step = step
        self.build_prompt = build_prompt
        self.max_model_len = max_model_len
        self.max_tokens = max_tokens
        self.need_ids = need_ids
        self.tokenizer = None
        if tokenizer_ref is not None:
            from transformers import AutoTokenizer

            from medreason_dist.models import resolve_model

            self.tokenizer = AutoTokenizer.from_pretrained(resolve_model(tokenizer_ref, cache_dir))
        self.forbidden = RESERVED_COLUMNS | set(output_columns(step).values())

    def encode(self, messages: ChatMessages) -> list[int]:
        assert self.tokenizer is not None
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already writes the special tokens (BOS, role markers).
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """The internal columns for one row (pure apart from the tokenizer)."""
        out: dict[str, Any] = {
            _C_MESSAGES: None,
            _C_PROMPT_IDS: [],
            _C_PROMPT_TOKENS: 0,
            _C_REJECT: None,
            _C_REJECT_DETAIL: None,
        }
        try:
            messages = check_messages(self.build_prompt(row))
        except Exception as e:  # a bad row must not stop the job
            out[_C_REJECT] = PROMPT_ERROR
            out[_C_REJECT_DETAIL] = _clip(f"{type(e).__name__}: {e}")
            return out
        out[_C_MESSAGES] = json.dumps(messages, ensure_ascii=False)
        if self.tokenizer is not None:
            try:
                ids = self.encode(messages)
            except Exception as e:
                out[_C_REJECT] = PROMPT_ERROR
                out[_C_REJECT_DETAIL] = _clip(f"chat template failed: {type(e).__name__}: {e}")
                return out
            n = len(ids)
        else:
            ids, n = [], _approx_tokens(messages)
        out[_C_PROMPT_TOKENS] = n
        too_long = length_rejection(n, self.max_tokens, self.max_model_len)
        if too_long:
            out[_C_REJECT] = PROMPT_TOO_LONG
            out[_C_REJECT_DETAIL] = too_long
        elif self.need_ids:
            out[_C_PROMPT_IDS] = ids
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        clash = self.forbidden & set(batch.column_names) | {c for c in batch.column_names if c.startswith(_INTERNAL_PREFIX)}
        if clash:
            raise ValueError(f"input columns {sorted(clash)} are reserved by the LLM engine layer; rename them")
        prepared = [self.prepare(row) for row in batch.to_pylist()]
        types = {
            _C_MESSAGES: pa.string(),
            _C_PROMPT_IDS: pa.list_(pa.int32()),
            _C_PROMPT_TOKENS: pa.int64(),
            _C_REJECT: pa.string(),
            _C_REJECT_DETAIL: pa.string(),
        }
        for name, typ in types.items():
            batch = batch.append_column(name, pa.array([p[name] for p in prepared], type=typ))
        return batch


# --------------------------------------------------------------------------------------------
# Processor construction (the only place vLLM / ray.data.llm configs are built)


def vllm_processor_config(settings: LLMSettings, model_source: str):
    """A ``vLLMEngineProcessorConfig`` for the cpu or gpu profile."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine_kwargs, placement = vllm_engine_spec(settings)
    return vLLMEngineProcessorConfig(
        model_source=model_source,
        engine_kwargs=engine_args(engine_kwargs),
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
        max_concurrent_batches=settings.max_concurrent_batches,
        should_continue_on_error=True,
        log_engine_metrics=False,
        # This module applies the chat template and tokenizes (it must count tokens anyway)
        # and vLLM detokenizes its own output, so the helper stages are off.
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        **placement,
    )


def http_processor_config(settings: LLMSettings):
    """An ``HttpRequestProcessorConfig`` for an OpenAI-compatible endpoint."""
    from ray.data.llm import HttpRequestProcessorConfig

    http = settings.http
    headers: dict[str, str] = {}
    if http.api_key_env:
        key = os.environ.get(http.api_key_env)
        if not key:
            raise RuntimeError(
                f"environment variable {http.api_key_env} (http.api_key_env) is not set; export the API key "
                "there or set http.api_key_env to null for an endpoint without authentication"
            )
        headers["Authorization"] = f"Bearer {key}"
    return HttpRequestProcessorConfig(
        url=http.base_url.rstrip("/") + "/chat/completions",
        headers=headers,
        qps=http.qps,
        max_retries=http.max_retries,
        base_retry_wait_time_in_s=http.retry_base_wait_s,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
    )


def _arrow_round_trips(value: Any) -> bool:
    """Whether a nested value survives Ray's Arrow conversion unchanged.

    Lists of dicts with different keys (e.g. anyOf: [{"$ref": ..}, {"type": "null"}]) come
    back with null-filled keys, which would corrupt a JSON schema sent in an HTTP payload.
    """
    try:
        return pa.array([value]).to_pylist()[0] == value
    except (pa.ArrowException, TypeError, ValueError):
        return False


def http_response_format(step: str, schema: dict[str, Any], strict: bool) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": step, "schema": schema, "strict": strict}}


def _row_sampling(sampling: dict[str, Any], schemas: dict[str, str] | None, model_key: str | None):
    """The sampling parameters of a row: ``sampling``, with the row's own answer schema when the
    step has one per ``model_key`` value."""
    if schemas is None:
        return lambda row: sampling
    return lambda row: {**sampling, "structured_outputs": {"json": schemas[row[model_key]]}}


def _vllm_preprocess(sampling: dict[str, Any], schemas: dict[str, str] | None = None, model_key: str | None = None):
    sampling_of = _row_sampling(sampling, schemas, model_key)

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        reject = row.get(_C_REJECT)
        return {
            "tokenized_prompt": row[_C_PROMPT_IDS] if not reject else [],
            "sampling_params": sampling_of(row),
            # A non-empty value makes every ray.data.llm stage pass the row through untouched.
            "__inference_error__": f"rejected before the engine: {reject}" if reject else "",
        }

    return preprocess


def _http_preprocess(sampling: dict[str, Any], model_name: str, response_format: dict[str, Any] | None,
                     formats: dict[str, dict[str, Any]] | None = None, model_key: str | None = None):
    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        reject = row.get(_C_REJECT)
        # Every row's payload has the same fields (a rejected row's are empty and never sent):
        # Ray Data merges the per-row structs of a batch, and blocks whose nested fields differed
        # failed there ("'DataType' object is not iterable") when a shard asked nothing.
        payload: dict[str, Any] = {"model": model_name, **sampling,
                                   "messages": [] if reject else json.loads(row[_C_MESSAGES])}
        if formats is not None:
            payload["response_format"] = formats[row[model_key]]
        elif response_format is not None:
            payload["response_format"] = response_format
        return {
            "payload": payload,
            "__inference_error__": f"rejected before the engine: {reject}" if reject else "",
        }

    return preprocess


def _serve_preprocess(sampling: dict[str, Any], schemas: dict[str, str] | None = None, model_key: str | None = None):
    """Rows for ray.data.llm's ServeDeploymentStage calling the shared engine (serve.py)."""
    sampling_of = _row_sampling(sampling, schemas, model_key)

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        reject = row.get(_C_REJECT)
        out: dict[str, Any] = {
            _C_SAVED_PREFIX + name: row[name] for name in SERVE_STAGE_COLUMNS if name in row
        }
        out.update({
            _C_SERVE: True,
            "method": _SERVE_METHOD,
            "dtype": None,  # the deployment takes a plain dict
            "__inference_error__": f"rejected before the engine: {reject}" if reject else "",
        })
        if not reject:
            # Rejected rows carry none: the stage writes a text snippet into this column for
            # requests that fail, and a struct next to it would not fit one Arrow column.
            out["request_kwargs"] = {"prompt_ids": row[_C_PROMPT_IDS], "sampling": sampling_of(row)}
        return out

    return preprocess


def serve_processor_config(settings: LLMSettings, engine):
    """A ``ServeDeploymentProcessorConfig`` for the shared engine ``engine`` (serve.SharedEngine)."""
    from ray.data.llm import ServeDeploymentProcessorConfig

    return ServeDeploymentProcessorConfig(
        deployment_name=engine.deployment_name,
        app_name=engine.app_name,
        should_continue_on_error=True,
        batch_size=settings.batch_size,
        concurrency=settings.concurrency,
    )


def _shared_engine(settings: LLMSettings):
    """The run's shared engine for these settings, or None (engine per call)."""
    from medreason_dist.llm import serve as llm_serve

    return llm_serve.engine_for(settings)


def _keep_row(row: dict[str, Any]) -> dict[str, Any]:
    return row


def run_llm(
    ds: "ray.data.Dataset",
    *,
    settings: LLMSettings,
    build_prompt: PromptBuilder,
    output_model: type[BaseModel] | dict[str, type[BaseModel]] | None,
    sampling: dict[str, Any],
    step: str,
    model_key: str | None = None,
) -> "ray.data.Dataset":
    """Run one LLM step over ``ds`` and return every row with the step's result columns.

    Args:
        ds: input rows; column names listed in :data:`RESERVED_COLUMNS` are refused.
        settings: engine profile and model.
        build_prompt: row -> chat messages ``[{"role": ..., "content": ...}, ...]``. An
            exception marks the row ``prompt_error``.
        output_model: pydantic model of the expected JSON (schema-constrained decoding and
            validation), or None for free text; or a dict of models, one per value of the
            ``model_key`` column, when rows of one step answer in different schemas (e.g. a
            screening schema with one property per criterion of each row's review).
        sampling: vLLM sampling parameters (``temperature``, ``max_tokens``, ``top_p``,
            ``stop``, ...); for the http profile they are sent as request fields.
        step: short snake_case name; prefixes the output columns (see :func:`output_columns`).

    Returns a lazy dataset with the input columns plus ``{step}_result`` (validated JSON text
    or free text), ``{step}_error`` (None or one of :data:`ERROR_REASONS`),
    ``{step}_error_detail``, ``{step}_input_tokens`` and ``{step}_output_tokens``.
    """
    import ray.data
    from ray.data.llm import build_processor

    per_row = isinstance(output_model, dict)
    if per_row and (not model_key or not output_model):
        raise ValueError("a dict of output models needs model_key, the column that picks each row's model")
    if not _STEP_NAME.match(step):
        raise ValueError(f"step name must be snake_case letters/digits, got {step!r}")
    sampling = dict(sampling)
    if "structured_outputs" in sampling or "response_format" in sampling:
        raise ValueError("pass output_model instead of structured_outputs/response_format in sampling")
    sampling.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    max_tokens = int(sampling["max_tokens"])
    if max_tokens < 1 or max_tokens >= settings.max_model_len:
        raise ValueError(f"max_tokens={max_tokens} must be in [1, max_model_len={settings.max_model_len})")
    if per_row:
        schemas = {k: json_schema_of(m) for k, m in output_model.items()}
        schema = next(iter(schemas.values()))  # checks below run on each; this one stands for all
    else:
        schemas = None
        schema = json_schema_of(output_model) if output_model is not None else None

    profile = settings.profile
    shared = None  # the run's shared engine (serve.py), when there is one for these settings
    if profile == "http":
        tokenizer_ref = settings.http.tokenizer
        response_format, formats = None, None
        for key, one in (schemas or {None: schema}).items():
            if one is None:
                continue
            fmt = http_response_format(step, one, settings.http.json_schema_strict)
            if not _arrow_round_trips(fmt):
                name = (output_model[key] if per_row else output_model).__name__
                raise ValueError(
                    f"the JSON schema of {name} does not survive Ray's Arrow conversion "
                    "(lists of objects with different keys, e.g. Optional[SubModel]); simplify the model"
                )
            if per_row:
                formats = {**(formats or {}), key: fmt}
            else:
                response_format = fmt
        config = http_processor_config(settings)
        preprocess = _http_preprocess(sampling, settings.served_model_name, response_format, formats, model_key)
    else:
        tokenizer_ref = settings.model
        row_schemas = {k: json.dumps(v) for k, v in schemas.items()} if per_row else None
        if schema is not None and not per_row:
            # vLLM 0.29 SamplingParams(structured_outputs=StructuredOutputsParams(json=...)); the
            # ray.data.llm vLLM stage (or the shared engine, serve.py) builds it from this key.
            # JSON text keeps the schema intact through Arrow.
            sampling["structured_outputs"] = {"json": json.dumps(schema)}
        shared = _shared_engine(settings)
        if shared is not None:
            config = serve_processor_config(settings, shared)
            preprocess = _serve_preprocess(sampling, row_schemas, model_key)
        else:
            config = vllm_processor_config(settings, engine_model_source(settings))
            preprocess = _vllm_preprocess(sampling, row_schemas, model_key)

    light = {"num_cpus": settings.light_stage_cpus}
    prepared = ds.map_batches(
        PromptTokenizer,
        fn_constructor_kwargs=dict(
            step=step,
            build_prompt=build_prompt,
            tokenizer_ref=tokenizer_ref,
            cache_dir=os.path.abspath(os.path.expanduser(settings.cache_dir)),
            max_model_len=settings.max_model_len,
            max_tokens=max_tokens,
            need_ids=profile != "http",
        ),
        batch_format="pyarrow",
        batch_size=settings.batch_size,  # the engine batch: smaller batches stream results sooner
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=settings.tokenizer_concurrency),
        **light,
    )
    processor = build_processor(
        config,
        preprocess=preprocess,
        postprocess=_keep_row,
        preprocess_map_kwargs=light,
        postprocess_map_kwargs=light,
    )
    if shared is not None or profile == "http":
        # The client actors only await the deployment or the endpoint; Ray Data would give each
        # a whole CPU, which next to an engine's bundle does not fit a 2-CPU local Ray (so only
        # one HTTP client ever started). Batches in flight per client as per engine actor in the
        # per-call path; ray.data.llm's HTTP stage sends the rows of one batch one after another,
        # so for http the requests in flight are concurrency x max_concurrent_batches.
        client = processor.get_stage_by_name("HttpRequestStage" if profile == "http" else "ServeDeploymentStage")
        client.map_batches_kwargs = {
            **client.map_batches_kwargs,
            "num_cpus": settings.light_stage_cpus,
            "max_concurrency": settings.max_concurrent_batches,
        }
    generated = processor(prepared)
    return generated.map(
        finalize_row,
        fn_kwargs=dict(step=step, profile=profile, output_model=output_model, max_tokens=max_tokens,
                       model_key=model_key),
        **light,
    )
