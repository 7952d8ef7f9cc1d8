"""Serving stacks: the third configuration axis, beside platform and model.

A stack is the software that runs a model on a platform: TensorRT-LLM, vLLM, PyTorch eager, NeMo's
2023 engine, SambaFlow. It names

* ``execution``: the kernel strategy its kernels follow (GPU: ``eager``, ``cuda-graph``, ``fused``; RDU:
  ``unfused``, ``fused-so``, ``fused-ho``), or none (``null``: any, the platform's fastest by default);
* ``applies_to``: the platform kinds it runs on (``gpu``, ``rdu``);
* ``runtime``: the stack's own work around the kernels, a few terms in time units, each with its
  meaning and basis (where the number comes from: ``fitted: <data>``, ``published: <source>`` or
  ``assumed: <reason>``):

  ============================  =====================================================================
  term                          added
  ============================  =====================================================================
  ``request_us``                once per request, to the time to first token (set-up, tokenising)
  ``prompt_token_us``           per prompt token of the batch, to the time to first token
  ``step_us``                   per forward pass (the prompt pass and every decode step)
  ``sequence_step_us``          per sequence per pass (sampling, stop checks)
  ``tp_step_us``                per pass per tensor-parallel device beyond the first (rank sync)
  ``collective_us``             per all-reduce of a pass, on top of the kernel model's own latency
  ``launch_us``                 GPU: host time to launch each kernel one by one (no CUDA graph); the
                                host runs ahead of the GPU, so a kernel costs max(its time, this)
                                (the H100's value; other GPUs x SM clock ratio, as the launch gap)
  ============================  =====================================================================

  so that ``TTFT = kernels(prompt pass) + request + prompt_token x B L + pass`` and
  ``decode step = kernels(step) + pass`` with ``pass = step + sequence_step x B + tp_step x (tp - 1)
  + collective x all-reduces``;
* ``kernel``: optional efficiency terms of the stack's kernels (fractions) that replace the platform
  model's defaults for that stack (see :data:`KERNEL_TERMS`);
* ``scheduler``: optional defaults of the stack's iteration-level scheduler for ``rdusim serve --model``
  (see :data:`SCHEDULER_TERMS`), each a value with its meaning and basis; what a stack leaves out comes
  from ``rdusim/data/serving_engine.yaml``, and ``rdusim serve`` flags override both.

Built-in stacks live in ``rdusim/data/stacks/*.yaml``; any path to a ``.yaml`` file of the same layout
works too (a user's own stack is one file). ``kernels`` (no runtime work) runs on every platform kind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rdusim.core.checks import check_keys, nearest, whole
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.units import to_si

STACK_DIR = DATA_DIR / "stacks"
KINDS = ("gpu", "rdu")
EXECUTIONS = {"gpu": ("eager", "cuda-graph", "fused"), "rdu": ("unfused", "fused-so", "fused-ho")}
TOP_LEVEL_KEYS = ("name", "description", "source", "applies_to", "execution", "runtime", "kernel", "scheduler")
# Batching policies of the serving engine (rdusim.scenarios.engine, whose kernel numbers them in this order).
BATCHING_POLICIES = ("prefill-first", "chunked", "static", "inflight")
# Scheduler terms: config key -> (meaning, what is allowed); values are policies or whole numbers, not times.
SCHEDULER_TERMS = {
    "batching": "the batching policy: " + ", ".join(BATCHING_POLICIES),
    "max_num_seqs": "most sequences in a running batch (a whole number, 1 to 4096)",
    "token_budget": "most tokens one step runs (a whole number, 1 to 2^31): chunked's chunk budget, the prompt "
                    "tokens of a prefill-first step, inflight's decode plus prompt tokens",
}
# Runtime terms: config key -> what it adds (all in time units; SI name = key less its unit).
RUNTIME_TERMS = {
    "request_us": "once per request, to the time to first token",
    "prompt_token_us": "per prompt token of the batch, to the time to first token",
    "step_us": "per forward pass (prompt pass and each decode step)",
    "sequence_step_us": "per sequence per pass",
    "tp_step_us": "per pass per tensor-parallel device beyond the first",
    "collective_us": "per all-reduce of a pass, beyond the kernel model's latency",
    "launch_us": "host time to launch each kernel (GPU, no CUDA graph): a kernel costs max(its time, this)",
}
# Kernel terms: efficiencies of the stack's kernels, replacing the GPU model's (baselines/gpu.py).
KERNEL_TERMS = {
    "attention_fp32_efficiency_fraction": "share of the GPU's FP32 CUDA-core peak (peak_fp32) its decode-attention kernels reach",
    "kv_stream_efficiency_fraction": "rate at which its decode-attention kernels stream the KV cache / copy rate",
}
TERM_KEYS = ("value", "meaning", "basis")
BASIS_PREFIXES = ("fitted:", "published:", "assumed:", "derived:")


@dataclass(frozen=True)
class Stack:
    """One serving stack in SI units (seconds); see the module docstring for each term."""

    name: str
    description: str
    applies_to: tuple[str, ...]
    execution: str | None
    request: float = 0.0
    prompt_token: float = 0.0
    step: float = 0.0
    sequence_step: float = 0.0
    tp_step: float = 0.0
    collective: float = 0.0
    launch: float = 0.0
    kernel: tuple[tuple[str, float], ...] = ()   # (SI name, value) of the stack's kernel terms
    scheduler: tuple[tuple[str, object], ...] = ()  # (key, value) of the stack's scheduler defaults
    basis: tuple[tuple[str, str], ...] = ()      # (config key, basis) of every term
    source: str = ""
    path: str = field(default="", compare=False)

    def runs_on(self, kind: str) -> bool:
        return kind in self.applies_to

    def kernel_term(self, name: str, default: float) -> float:
        """The stack's own kernel term ``name`` (SI name, e.g. ``stream_efficiency``), else ``default``."""
        return dict(self.kernel).get(name, default)

    def engine_settings(self) -> dict:
        """The stack's scheduler defaults as serving-engine settings (``serving_engine.yaml``'s keys):
        ``batching``, ``max_num_seqs`` and the token budget as both ``chunk_token_budget`` and
        ``prefill_token_budget``; empty for a stack without a ``scheduler`` block."""
        out = {}
        for key, value in self.scheduler:
            if key == "token_budget":
                out["chunk_token_budget"] = out["prefill_token_budget"] = value
            else:
                out[key] = value
        return out

    def pass_time(self, batch, tp: int = 1, allreduces=0):
        """Runtime work added to every pass of ``batch`` sequences (``batch`` may be an array)."""
        return (self.step + self.sequence_step * batch + self.tp_step * (tp - 1)
                + self.collective * allreduces)

    def request_time(self, batch, prompt):
        """Runtime work added once per request to the time to first token (arrays allowed)."""
        return self.request + self.prompt_token * batch * prompt

    @property
    def has_runtime(self) -> bool:
        return any((self.request, self.prompt_token, self.step, self.sequence_step, self.tp_step, self.collective))


def builtin_stacks() -> list[str]:
    """Names of the stack files shipped with rdusim."""
    return sorted(p.stem for p in STACK_DIR.glob("*.yaml"))


def list_stacks(kind: str | None = None) -> list[str]:
    """Built-in stack names, those that run on platform ``kind`` when given."""
    return [n for n in builtin_stacks() if kind is None or load_stack(n).runs_on(kind)]


def _resolve(name_or_path: str) -> Path:
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError("stack", name_or_path, "an existing .yaml file or one of " + ", ".join(builtin_stacks()))
        return path
    path = STACK_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError("stack", name_or_path,
                          ", ".join(builtin_stacks()) + " or a path to a stack .yaml" + nearest(name_or_path, builtin_stacks()))
    return path


def _read(path: Path) -> dict:
    data = load_yaml(path, f"stack file {path}", what="stack YAML file")
    return mapping(f"stack file {path}", data, "a mapping of stack fields", optional=False)


def _basis(at: str, b) -> str:
    """A term's ``basis``, checked: text that starts with one of :data:`BASIS_PREFIXES` and says where from."""
    if not isinstance(b, str) or not b.startswith(BASIS_PREFIXES) or not b.split(":", 1)[1].strip():
        raise ConfigError(f"{at}.basis", b, "text starting with " + ", ".join(BASIS_PREFIXES) + " and saying where from")
    return b


def _terms(where: str, block, known: dict[str, str]) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """``{SI name: value}`` and ``[(key, basis)]`` of a ``runtime`` or ``kernel`` block."""
    if block is None:
        return {}, []
    if not isinstance(block, dict):
        raise ConfigError(where, block, "a mapping of terms: " + ", ".join(known))
    check_keys(where, block, known)
    values, basis = {}, []
    for key, term in block.items():
        at = f"{where}.{key}"
        if not isinstance(term, dict):
            raise ConfigError(at, term, "a mapping with value, meaning and basis")
        check_keys(at, term, TERM_KEYS)
        for part in TERM_KEYS:
            if part not in term:
                raise ConfigError(f"{at}.{part}", None, {"value": "a number", "meaning": "a sentence",
                                                         "basis": "fitted: / published: / assumed: / derived: <where from>"}[part])
        if not isinstance(term["meaning"], str) or not term["meaning"].strip():
            raise ConfigError(f"{at}.meaning", term["meaning"], "a sentence saying what the term is")
        b = _basis(at, term["basis"])
        values.update(to_si({key: term["value"]}, where))
        basis.append((key, b))
    return values, basis


def _scheduler(where: str, block) -> tuple[tuple[tuple[str, object], ...], list[tuple[str, str]]]:
    """``((key, value), ...)`` and ``[(key, basis)]`` of a ``scheduler`` block (see :data:`SCHEDULER_TERMS`)."""
    if block is None:
        return (), []
    if not isinstance(block, dict):
        raise ConfigError(where, block, "a mapping of scheduler terms: " + ", ".join(SCHEDULER_TERMS))
    check_keys(where, block, SCHEDULER_TERMS)
    values, basis = [], []
    for key, term in block.items():
        at = f"{where}.{key}"
        if not isinstance(term, dict) or set(term) - {"value", "basis"} or "value" not in term or "basis" not in term:
            raise ConfigError(at, term, "a mapping with value and basis")
        value, b = term["value"], _basis(at, term["basis"])
        if key == "batching":
            if value not in BATCHING_POLICIES:
                raise ConfigError(f"{at}.value", value, ", ".join(BATCHING_POLICIES))
        else:
            value = whole(f"{at}.value", value, 1, 4096 if key == "max_num_seqs" else 2**31)
        values.append((key, value))
        basis.append((f"scheduler.{key}", b))
    return tuple(values), basis


def load_stack(name_or_path: str) -> Stack:
    """Load a stack by built-in name (``trtllm``) or path to a YAML file, in SI units.

    Unknown or misspelt keys (the nearest is suggested), missing parts of a term, values out of range,
    unknown platform kinds and executions raise :class:`ConfigError` naming the field and what is allowed.
    """
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ConfigError("stack", name_or_path, ", ".join(builtin_stacks()) + " or a path to a stack .yaml")
    return _load_stack(name_or_path)


@lru_cache(maxsize=None)
def _load_stack(name_or_path: str) -> Stack:
    path = _resolve(name_or_path)
    data = _read(path)
    where = path.stem
    check_keys(where, data, TOP_LEVEL_KEYS)
    kinds = data.get("applies_to")
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(f"{where}.applies_to", kinds, "a list of platform kinds: " + ", ".join(KINDS))
    execution = data.get("execution")
    allowed = sorted({e for k in kinds for e in EXECUTIONS[k]})
    if execution is not None and execution not in allowed:
        raise ConfigError(f"{where}.execution", execution, "null (any) or one of " + ", ".join(allowed))
    runtime, basis = _terms(f"{where}.runtime", data.get("runtime"), RUNTIME_TERMS)
    kernel, kbasis = _terms(f"{where}.kernel", data.get("kernel"), KERNEL_TERMS)
    for key, value in kernel.items():
        if not 0 < value <= 1 or not math.isfinite(value):
            raise ConfigError(f"{where}.kernel.{key}_fraction", value, "a fraction in (0, 1]")
    scheduler, sbasis = _scheduler(f"{where}.scheduler", data.get("scheduler"))
    return Stack(name=str(data.get("name", where)), description=str(data.get("description", "")),
                 applies_to=tuple(kinds), execution=execution, kernel=tuple(sorted(kernel.items())),
                 scheduler=scheduler, basis=tuple(basis + kbasis + sbasis), source=str(data.get("source", "")),
                 path=str(path), **runtime)


BEST_EXECUTION = {"gpu": "fused", "rdu": "fused-ho"}


def resolve_stack(kind: str, default_stack: str, execution: str | None, stack: str | None) -> tuple[str, Stack, str]:
    """``(stack key, Stack, execution)`` of a prediction on a platform of ``kind`` whose file names
    ``default_stack``, given the request's ``execution`` and ``stack`` (either may be None).

    How the two combine:

    * ``stack`` given: the stack must run on ``kind``; the execution is the stack's. An ``execution``
      that differs from it is an error, except on a stack without one (``kernels``), which runs any.
    * only ``execution`` given: the platform's default stack when it runs that execution (or any), else
      ``kernels`` (kernel time in that execution, no runtime work; what ``--execution`` gave before
      stacks existed).
    * neither: the platform's default stack, in its execution (or the platform's fastest).
    """
    executions = EXECUTIONS[kind]
    if execution in ("", "best"):
        execution = None
    if execution is not None and execution not in executions:
        raise ConfigError("execution", execution, f"for {kind} platforms: " + ", ".join(executions))
    if stack in (None, ""):
        key = default_stack
        s = load_stack(key)
        if execution is not None and s.execution not in (None, execution):
            key, s = "kernels", load_stack("kernels")
    else:
        key = str(stack)
        s = load_stack(key)
        if not s.runs_on(kind):
            raise ConfigError("stack", key, f"a stack for {kind} platforms: " + ", ".join(list_stacks(kind)))
        if execution is not None and s.execution not in (None, execution):
            raise ConfigError("execution", execution,
                              f"{s.execution} (the kernel execution of stack {key}); omit it, or use stack "
                              f"kernels for kernel time in any execution")
    if not s.runs_on(kind):
        raise ConfigError("default_stack", key, f"a stack for {kind} platforms: " + ", ".join(list_stacks(kind)))
    mode = execution or s.execution or BEST_EXECUTION[kind]
    if mode not in executions:
        raise ConfigError("stack", key, f"a stack whose execution runs on {kind} platforms ({', '.join(executions)})")
    return key, s, mode


load_stack.cache_clear = _load_stack.cache_clear
