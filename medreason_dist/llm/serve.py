"""Shared vLLM engines: one engine per model for a whole run, served by Ray Serve.

Without this module every :func:`medreason_dist.llm.engine.run_llm` call builds its own
``vLLMEngineProcessorConfig`` processor, whose engine actor lives for one dataset execution:
a pipeline run pays the engine start-up (35–60 s on a 2-core CPU) once per LLM step. Here the
engine is started once per model as a Ray Serve deployment (``ray.serve.llm.LLMConfig`` +
``build_llm_deployment``) and every ``run_llm`` call for that model reaches it through
``ray.data.llm.ServeDeploymentProcessorConfig``.

Use::

    from medreason_dist.llm import serve as llm_serve

    with llm_serve.shared_engines():          # run start: sharing on, nothing started yet
        ...                                   # stages call run_llm; the first call per model
        ...                                   # starts its engine, later calls reuse it
        llm_serve.release_engines()           # before a stage that needs the engine's CPUs
        ...                                   # (SFT workers): the next run_llm restarts it
    startups = llm_serve.engine_startups()    # for the run manifest / report
    # run end: every engine this module started is deleted (and Serve, if it started it)

* Engines start lazily, inside :func:`shared_engines` only (or explicitly with
  :func:`start_engine`), for the cpu and gpu profiles and ``LLMSettings.shared_engine``.
* One live engine at a time: starting the engine of another model (eval's base / fine-tuned
  models) first deletes the previous one, so two engines never compete for a small machine.
* The engine is the same vLLM engine the per-call processor builds (same engine kwargs,
  placement bundle and runtime env, from :func:`medreason_dist.llm.vllm_spec.vllm_engine_spec`);
  the replica actor itself reserves no CPU, so the deployment holds exactly the engine's
  ``{"CPU": cpus_per_engine}`` bundle, like the per-call engine actor.
* Requests are the per-call path's: chat-templated token ids and a vLLM ``SamplingParams``
  dict (JSON-schema structured outputs included), handed to the engine's ``generate`` by
  :class:`MedReasonLLMServer`, a thin ``LLMServer`` subclass whose replies only carry the
  columns :func:`~medreason_dist.llm.engine.finalize_row` reads.
* If an engine cannot start, the failure is logged and recorded in :func:`engine_startups`,
  and ``run_llm`` falls back to an engine per call for that model for the rest of the run.

Serve is started without HTTP proxies (handles only), so no port is opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Iterator

from medreason_dist.llm.settings import LLMSettings
from medreason_dist.llm.vllm_spec import engine_args, engine_model_source, vllm_engine_spec

log = logging.getLogger(__name__)

APP_PREFIX = "medreason-llm-"
SERVER_CLASS_NAME = "MedReasonLLMServer"
SKIP_INIT_CLASS_NAME = "LocalModelCallback"
METHOD = "generate_ids"  # the deployment method the client stage calls
# The reply column that carries a per-request engine failure (engine.py reads it).
ENGINE_ERROR_COLUMN = "__mr_engine_error"
START_TIMEOUT_S = float(os.environ.get("MEDREASON_ENGINE_START_TIMEOUT_S", "1800"))


@dataclass(frozen=True)
class SharedEngine:
    """A running shared engine (one Serve application with one deployment)."""

    key: str
    model: str
    app_name: str
    deployment_name: str
    startup_s: float


@dataclass
class EngineStartup:
    """One engine start-up of this process, for reports."""

    model: str
    app_name: str
    seconds: float
    ok: bool
    error: str | None = None
    stopped_after_s: float | None = None  # engine lifetime, set when it is shut down


_lock = threading.RLock()
_depth = 0  # nesting of shared_engines()
_engines: dict[str, SharedEngine] = {}
_started_at: dict[str, float] = {}
_failed: dict[str, str] = {}  # key -> error, for the rest of the sharing scope
_startups: list[EngineStartup] = []
_serve_started_here = False
_LAZY: dict[str, Any] = {}  # classes built on first use (their bases import vLLM)


# --------------------------------------------------------------------------------------------
# The deployment class (built lazily: importing ray.serve.llm imports vLLM)


def _plain(value: Any) -> Any:
    """Arrow/NumPy values from Ray Data rows as plain Python (lists, ints, floats)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None and not isinstance(value, (str, bytes)):
        return _plain(tolist())
    return value


def _tokens_prompt(ids: list[int]) -> Any:
    try:
        from vllm.inputs import TokensPrompt
    except ImportError:  # vLLM >= 0.19 moved it
        from vllm.inputs.llm import TokensPrompt
    return TokensPrompt(prompt_token_ids=ids)


def _sampling_params(sampling: dict[str, Any]) -> Any:
    """``vllm.SamplingParams`` from the row's dict, exactly as ray.data.llm's vLLM stage builds it."""
    import vllm
    from vllm.sampling_params import StructuredOutputsParams

    sampling = dict(sampling)
    structured = sampling.pop("structured_outputs", None)
    return vllm.SamplingParams(
        **sampling, structured_outputs=StructuredOutputsParams(**structured) if structured else None
    )


def _fatal_errors() -> tuple[type[BaseException], ...]:
    try:
        from ray.llm._internal.common.errors import VLLM_FATAL_ERRORS

        return tuple(VLLM_FATAL_ERRORS)
    except ImportError:  # pragma: no cover - moved in another Ray version
        from vllm.v1.engine.exceptions import EngineDeadError

        return (EngineDeadError,)


def _serve_llm() -> Any:
    """``ray.serve.llm``, imported without its side effect on this process's logging.

    Its first import (``ray.llm._internal.serve``) replaces the root logger's handlers with a
    JSON stream handler at INFO; the driver's own logging (run console, run log file) is put
    back as it was.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import ray.serve.llm
        import ray.serve.llm.deployment  # noqa: F401
    finally:
        if root.handlers != handlers or root.level != level:
            root.handlers[:] = handlers
            root.setLevel(level)
    return ray.serve.llm


def _make_server_class() -> type:
    LLMServer = _serve_llm().deployment.LLMServer

    fatal = _fatal_errors()

    class MedReasonLLMServer(LLMServer):
        """``LLMServer`` plus one method: generate from token ids with a SamplingParams dict.

        The reply holds only ``generated_text``, ``num_input_tokens``, ``num_generated_tokens``
        and :data:`ENGINE_ERROR_COLUMN`, the columns the per-call vLLM stage produces for
        :func:`~medreason_dist.llm.engine.finalize_row`; OpenAI response fields (``id``,
        ``choices``, ...) would overwrite input columns of the same name.
        """

        async def generate_ids(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
            try:
                client = getattr(self.engine, "_engine_client", None)
                if client is None:
                    raise RuntimeError("the Serve LLM engine exposes no vLLM engine client (Ray version?)")
                ids = [int(i) for i in _plain(request["prompt_ids"])]
                params = _sampling_params(_plain(request["sampling"]))
                final = None
                async for out in client.generate(
                    prompt=_tokens_prompt(ids), sampling_params=params, request_id=f"mr-{uuid.uuid4().hex}"
                ):
                    if out.finished:
                        final = out
                if final is None:
                    raise RuntimeError("the engine finished the stream without a final output")
                completion = final.outputs[0]
                reply = {
                    "generated_text": completion.text,
                    "num_input_tokens": len(final.prompt_token_ids or ids),
                    "num_generated_tokens": len(completion.token_ids),
                    ENGINE_ERROR_COLUMN: "",
                }
            except fatal:
                raise  # a dead engine fails the job, as in the per-call path
            except Exception as e:  # this request only, like should_continue_on_error=True
                reply = {
                    "generated_text": "",
                    "num_input_tokens": 0,
                    "num_generated_tokens": 0,
                    ENGINE_ERROR_COLUMN: f"{type(e).__name__}: {e}",
                }
            yield reply

    return MedReasonLLMServer


def _make_skip_init_class() -> type:
    _serve_llm()  # imports Ray's LLM package with the logging guard
    from ray.llm._internal.common.callbacks.base import CallbackBase

    class LocalModelCallback(CallbackBase):
        """Skip Serve LLM's node initialisation for a model already in a local folder.

        That step only downloads model files, in an extra Ray task that imports vLLM (seconds of
        start-up on a small CPU); with a local ``model_source`` vLLM loads the folder directly.
        """

        async def on_before_node_init(self) -> None:
            self.ctx.run_init_node = False

    return LocalModelCallback


def _lazy_class(name: str) -> type:
    """A class built on first use and published as a module attribute, so that Ray pickles it
    by reference and replicas import it as ``medreason_dist.llm.serve.<name>``."""
    cls = _LAZY.get(name)
    if cls is None:
        cls = {SERVER_CLASS_NAME: _make_server_class, SKIP_INIT_CLASS_NAME: _make_skip_init_class}[name]()
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__ = name
        _LAZY[name] = cls
        globals()[name] = cls
    return cls


def server_class() -> type:
    """The deployment class (``medreason_dist.llm.serve.MedReasonLLMServer``)."""
    return _lazy_class(SERVER_CLASS_NAME)


def __getattr__(name: str) -> Any:  # PEP 562: build the classes on first access (replicas too)
    if name in (SERVER_CLASS_NAME, SKIP_INIT_CLASS_NAME):
        return _lazy_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Engine identity and Serve plumbing


def engine_identity(settings: LLMSettings) -> tuple[str, dict[str, Any]]:
    """(key, spec): settings that give the same engine share one deployment."""
    engine_kwargs, placement = vllm_engine_spec(settings)
    spec = {
        "profile": settings.profile,
        "model_source": engine_model_source(settings),
        "engine_kwargs": engine_kwargs,
        "placement": placement,
        "replicas": settings.concurrency,
    }
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return key, spec


def llm_config(settings: LLMSettings, key: str, spec: dict[str, Any]):
    """The ``ray.serve.llm.LLMConfig`` of the shared engine for ``settings``."""
    LLMConfig = _serve_llm().LLMConfig

    placement = spec["placement"]
    # Serve LLM picks vLLM's executor itself ("mp" on CPU: engine-core + one worker process;
    # "ray" on GPUs over the placement group) and refuses another choice on GPUs.
    engine_kwargs = engine_args(spec["engine_kwargs"])
    extra: dict[str, Any] = {}
    if os.path.isdir(spec["model_source"]):
        extra["callback_config"] = {"callback_class": f"{__name__}.{SKIP_INIT_CLASS_NAME}"}
    return LLMConfig(
        model_loading_config={"model_id": f"medreason-{key}", "model_source": spec["model_source"]},
        engine_kwargs=engine_kwargs,
        accelerator_type=placement.get("accelerator_type"),
        placement_group_config=placement.get("placement_group_config"),
        runtime_env=placement.get("runtime_env"),
        deployment_config={
            "num_replicas": settings.concurrency,
            # The replica shares the engine's bundle instead of adding a CPU of its own.
            "ray_actor_options": {"num_cpus": 0},
            # A busy small machine can be slow to answer; a failed check restarts the engine.
            "health_check_timeout_s": 60,
        },
        log_engine_metrics=False,
        **extra,
    )


def _serve_running() -> bool:
    import ray

    try:
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        return True
    except ValueError:
        return False


def _ensure_serve() -> None:
    global _serve_started_here
    from ray import serve

    if not _serve_running():
        serve.start(proxy_location="Disabled")  # handles only: no HTTP proxy, no port
        _serve_started_here = True


def _app_status(app_name: str) -> str | None:
    import ray
    from ray import serve

    if not ray.is_initialized():  # Serve's client would start a new Ray
        return None
    try:
        app = serve.status().applications.get(app_name)
    except Exception:  # Serve or Ray gone
        return None
    return None if app is None else str(getattr(app.status, "value", app.status))


def _run_app(app: Any, app_name: str, timeout_s: float) -> None:
    """``serve.run`` (which returns once the engine is up) with a time limit."""
    from ray import serve

    outcome: dict[str, BaseException] = {}

    def deploy() -> None:
        try:
            serve.run(app, name=app_name, route_prefix=None)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            outcome["error"] = e

    thread = threading.Thread(target=deploy, name=f"deploy-{app_name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        with contextlib.suppress(Exception):
            serve.delete(app_name, _blocking=False)
        raise TimeoutError(
            f"shared engine {app_name} was not up after {timeout_s:.0f}s (status: {_app_status(app_name)})"
        )
    if "error" in outcome:
        raise outcome["error"]


def _delete(engine: SharedEngine) -> None:
    import ray
    from ray import serve

    if ray.is_initialized():  # else Ray is gone and the engine with it
        try:
            serve.delete(engine.app_name)
        except Exception as e:
            log.warning("deleting shared LLM engine %s: %s", engine.app_name, e)
    started = _started_at.pop(engine.key, None)
    for s in reversed(_startups):
        if s.app_name == engine.app_name and s.ok and s.stopped_after_s is None:
            s.stopped_after_s = round(time.monotonic() - started, 3) if started is not None else None
            break
    log.info("shared LLM engine %s (%s) stopped", engine.app_name, engine.model)


# --------------------------------------------------------------------------------------------
# Public API


def start_engine(settings: LLMSettings, *, timeout_s: float | None = None) -> SharedEngine:
    """Start (or find) the shared engine for ``settings``; other engines are stopped first."""
    import ray

    build_llm_deployment = _serve_llm().build_llm_deployment

    if settings.profile not in ("cpu", "gpu"):
        raise ValueError(f"profile {settings.profile!r} has no local engine to share")
    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialized; start it before the shared engine")
    key, spec = engine_identity(settings)
    with _lock:
        current = _engines.get(key)
        if current is not None:
            if _app_status(current.app_name) == "RUNNING":
                return current
            _engines.pop(key, None)  # deleted or dead: start it again
        for other in list(_engines.values()):  # one live engine at a time
            _delete(other)
            _engines.pop(other.key, None)
        cls = server_class()
        app_name = APP_PREFIX + key
        config = llm_config(settings, key, spec)
        app = build_llm_deployment(config, deployment_cls=cls)
        deployment_name = f"{SERVER_CLASS_NAME}:medreason-{key}"
        t0 = time.monotonic()
        try:
            _ensure_serve()
            _run_app(app, app_name, START_TIMEOUT_S if timeout_s is None else timeout_s)
        except BaseException as e:
            seconds = round(time.monotonic() - t0, 3)
            _startups.append(EngineStartup(settings.model, app_name, seconds, False, f"{type(e).__name__}: {e}"[:500]))
            raise
        seconds = round(time.monotonic() - t0, 3)
        engine = SharedEngine(key, settings.model, app_name, deployment_name, seconds)
        _engines[key] = engine
        _started_at[key] = time.monotonic()
        _startups.append(EngineStartup(settings.model, app_name, seconds, True))
        log.info("shared LLM engine %s (%s) up in %.1fs", app_name, settings.model, seconds)
        return engine


def engine_for(settings: LLMSettings) -> SharedEngine | None:
    """The shared engine ``run_llm`` should use for ``settings``, or None for an engine per call.

    An engine that is up is always used (unless ``settings.shared_engine`` is false); a missing
    one is started only inside :func:`shared_engines`.
    """
    if settings.profile not in ("cpu", "gpu") or not getattr(settings, "shared_engine", True):
        return None
    if _depth == 0 and not _engines:
        return None  # no sharing in this process: the per-call path, untouched
    key, _ = engine_identity(settings)
    with _lock:
        current = _engines.get(key)
        if current is not None and _app_status(current.app_name) == "RUNNING":
            return current
        if _depth == 0 or key in _failed:
            return None
        try:
            return start_engine(settings)
        except Exception as e:
            _failed[key] = f"{type(e).__name__}: {e}"
            log.warning("shared LLM engine for %s did not start (%s); using an engine per call", settings.model, e)
            return None


def release_engines() -> None:
    """Stop the live engines but stay in the sharing scope: the next ``run_llm`` of a model
    starts its engine again. For the runner, before a stage that needs the engine's CPUs or
    GPUs for something else (SFT workers, embedding actors)."""
    with _lock:
        for engine in list(_engines.values()):
            _delete(engine)
        _engines.clear()


def shutdown_engines() -> list[dict[str, Any]]:
    """Stop every engine this process started (and Serve, if started here); returns the start-ups."""
    global _serve_started_here
    with _lock:
        for engine in list(_engines.values()):
            _delete(engine)
        _engines.clear()
        _failed.clear()
        if _serve_started_here:
            import ray

            if ray.is_initialized():
                from ray import serve

                with contextlib.suppress(Exception):
                    if not serve.status().applications:
                        serve.shutdown()
            _serve_started_here = False
        return engine_startups()


def engine_startups() -> list[dict[str, Any]]:
    """Every engine start-up of this process so far: model, app, seconds, ok, error, lifetime."""
    with _lock:
        return [asdict(s) for s in _startups]


def reset_startups() -> None:
    """Forget recorded start-ups (for a new run in the same process)."""
    with _lock:
        _startups.clear()


@contextlib.contextmanager
def shared_engines() -> Iterator[None]:
    """Within the block ``run_llm`` starts one engine per model lazily and reuses it;
    on exit every engine started here is stopped. Entering the outermost block starts a new
    record of :func:`engine_startups` (one run's)."""
    global _depth
    with _lock:
        if _depth == 0:
            _startups.clear()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            outermost = _depth == 0
        if outermost:
            shutdown_engines()
