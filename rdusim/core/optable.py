"""A graph flattened into contiguous arrays (struct of arrays) for the numba planner and cost kernels.

Per op: kind, layer, whether it is a PCU pipeline stage, its work on one PCU (seconds), weight bytes,
PMUs for its stage buffer and its weights in a fused kernel, collective bytes. Per tensor: bytes,
producing op (-1 for graph inputs, weights, KV cache), last consuming op, whether it leaves the graph.
Activation inputs of op i are ``in_tensor[in_ptr[i]:in_ptr[i + 1]]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rdusim.core.graph import Graph, Kind, Op, Role

KIND_CODES = {k: i for i, k in enumerate(Kind)}
NON_STAGE = (Kind.TRANSPOSE, Kind.COLLECTIVE, Kind.GATHER)


@dataclass
class OpTable:
    """Arrays describing the ops of one graph on one chip (see module docstring)."""

    names: list[str]
    kind: np.ndarray          # int8 codes of :class:`Kind`
    layer: np.ndarray         # int32, -1 outside decoder layers
    is_stage: np.ndarray      # int8: occupies PCUs as a pipeline stage
    work_s: np.ndarray        # float64: seconds on one PCU
    flops: np.ndarray         # float64
    weight_bytes: np.ndarray  # float64
    buffer_pmus: np.ndarray   # float64: PMUs of the op's output stage buffer when fused
    weight_pmus: np.ndarray   # float64: PMUs holding or staging its weights when fused
    onchip_bytes: np.ndarray  # float64: bytes through PMUs (inputs + output)
    coll_bytes: np.ndarray    # float64: bytes sent over peer links
    coll_steps: np.ndarray    # float64: latency-bound steps of its collective (2 per all-reduce)
    in_ptr: np.ndarray        # int64 CSR pointers into in_tensor
    in_tensor: np.ndarray     # int64 tensor ids of activation inputs
    t_bytes: np.ndarray       # float64
    t_producer: np.ndarray    # int64
    t_last_consumer: np.ndarray  # int64
    t_is_output: np.ndarray   # int8

    @property
    def n_ops(self) -> int:
        return len(self.names)


PerOp = Callable[[Op], tuple[float, float, float]]


def build_optable(graph: Graph, per_op: PerOp | None = None) -> OpTable:
    """Flatten ``graph`` into an :class:`OpTable`.

    The platform-independent arrays (kinds, FLOPs, bytes, tensors) are always filled. ``per_op``, if
    given, returns a platform's ``(work_s, buffer_pmus, weight_pmus)`` for an op (the SN40L model
    passes its own; see :func:`rdusim.sn40l.opcost.rdu_optable`); without it those arrays stay zero,
    which is how the GPU baselines use the table.
    """
    n = len(graph.ops)
    tensor_id: dict[str, int] = {}
    t_bytes: list[float] = []
    t_producer: list[int] = []
    t_last: list[int] = []
    in_ptr = np.zeros(n + 1, dtype=np.int64)
    in_tensor: list[int] = []
    arrays = {k: np.zeros(n) for k in ("work_s", "flops", "weight_bytes", "buffer_pmus", "weight_pmus",
                                      "onchip_bytes", "coll_bytes", "coll_steps")}
    kind = np.zeros(n, dtype=np.int8)
    layer = np.zeros(n, dtype=np.int32)
    is_stage = np.zeros(n, dtype=np.int8)
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t.role in (Role.WEIGHT, Role.STATE):
                continue
            if t.name not in tensor_id:  # graph input or KV cache: produced outside the graph
                tensor_id[t.name] = len(t_bytes)
                t_bytes.append(float(op.read_bytes_override.get(t.name, t.nbytes)))
                t_producer.append(-1)
                t_last.append(i)
            tid = tensor_id[t.name]
            t_last[tid] = i
            in_tensor.append(tid)
        in_ptr[i + 1] = len(in_tensor)
        tensor_id[op.output.name] = len(t_bytes)
        t_bytes.append(float(op.output.nbytes))
        t_producer.append(i)
        t_last.append(i)
        kind[i] = KIND_CODES[op.kind]
        layer[i] = op.layer
        is_stage[i] = op.kind not in NON_STAGE
        arrays["flops"][i] = op.flops
        arrays["weight_bytes"][i] = op.weight_bytes
        if per_op is not None:
            arrays["work_s"][i], arrays["buffer_pmus"][i], arrays["weight_pmus"][i] = per_op(op)
        arrays["onchip_bytes"][i] = op.bytes_moved
        arrays["coll_bytes"][i] = op.collective_bytes
        arrays["coll_steps"][i] = 2.0 if op.kind == Kind.COLLECTIVE and op.collective_ways > 1 else 0.0
    outputs = np.zeros(len(t_bytes), dtype=np.int8)
    for name in graph.outputs:
        if name in tensor_id:
            outputs[tensor_id[name]] = 1
    if graph.ops:  # the last op's output always leaves the graph
        outputs[tensor_id[graph.ops[-1].output.name]] = 1
    return OpTable(
        names=[op.name for op in graph.ops], kind=kind, layer=layer, is_stage=is_stage,
        in_ptr=in_ptr, in_tensor=np.asarray(in_tensor, dtype=np.int64),
        t_bytes=np.asarray(t_bytes), t_producer=np.asarray(t_producer, dtype=np.int64),
        t_last_consumer=np.asarray(t_last, dtype=np.int64), t_is_output=outputs, **arrays,
    )
