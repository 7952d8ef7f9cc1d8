"""The ``rdusim`` command line. Bad input exits with status 2 and one line naming what is allowed."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from benchmarks.models import load_models, param_count
from benchmarks.moe import active_param_count, is_moe, load_moe_models
from benchmarks.moe import param_count as moe_param_count
from rdusim import __version__
from rdusim.core.checks import OneLineParser, json_safe, number, whole
from rdusim.core.errors import ConfigError, RdusimError
from rdusim.core.helpformat import DefaultsHelpFormatter
from rdusim.core.loader import writable_file
from rdusim.core.platforms import builtin_names, load_platform
from rdusim.core.precision import DEFAULT_PRECISION
from rdusim.core.stacks import list_stacks, load_stack

# Exit status: 0 a result (including fits: false), 1 an internal error (a bug: please report it),
# 2 bad input (one line naming the field and what is allowed), 130 interrupted (Ctrl-C).
EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _print_json(obj) -> None:
    """One JSON object; NaN and infinities become null, so the output is always valid JSON."""
    print(json.dumps(json_safe(obj), allow_nan=False))

# Each subcommand imports its scenario module inside its function, on purpose: a command pays only
# for the heavy modules it runs (numba kernels, pandas, scipy), which keeps `rdusim --help` and
# `rdusim list` fast; `rdusim predict` of a GPU row imports numba and pandas only to build a template. These are the only function-local imports besides torch (tests/test_architecture.py).


def _cmd_list(args) -> int:
    print("platforms:")
    for name in builtin_names():
        p = load_platform(name)
        print(f"  {name:12s} {p.kind:3s} {p.devices} x device, HBM {p.hbm_total / 1e9:.0f} GB  {p.description}")
    print("stacks:")
    for name in list_stacks():
        st = load_stack(name)
        print(f"  {name:14s} {'/'.join(st.applies_to):7s} {st.execution or 'any':10s} {st.description}")
    print("models:")
    for name, m in load_models().items():
        print(f"  {name:14s} {param_count(m) / 1e9:7.2f} B parameters  ({m.source.split(';')[0]})")
    for name, m in load_moe_models().items():
        print(f"  {name:14s} {moe_param_count(m) / 1e9:7.2f} B parameters, {active_param_count(m) / 1e9:.1f} B active"
              f"  ({m.source.split(';')[0]})")
    return 0


def _cmd_predict(args) -> int:
    from rdusim.scenarios.predict_light import predict_one_light

    request = (args.platform, args.model, args.batch, args.tp, args.prompt, args.gen, args.execution, args.stack)
    extensions = {k: getattr(args, k) for k in ("precision", "kv_precision", "hot_experts_in_hbm", "draft",
                                                 "draft_tokens", "acceptance") if getattr(args, k) is not None}
    # a GPU row with a cached template: numpy only, no numba or pandas (dense BF16 rows only)
    dense_light = not extensions and not is_moe(args.model) and str(args.batch).strip().lower() != "max"
    out = predict_one_light(*request) if dense_light else None
    if out is None:  # an SN40L row, a GPU template not built yet (built and cached now), MoE, FP8, a draft
        from rdusim.scenarios.predict import predict_one

        out = predict_one(*request, **extensions)
    stack = load_stack(out["stack"])
    out["stack_description"] = stack.description  # what the times hold: "kernel time only" for kernels
    label = f"stack {out['stack']}" + ("" if stack.has_runtime else ", kernel time only")
    if args.energy:
        out.update(_predict_energy(out, args.price_per_hour))
    if args.json:
        _print_json(out)
    elif out["fits"]:
        print(f"{out['platform']} {out['model']} {label} ({out['execution']}) batch {out['batch']} tp {out['tp']}: "
              f"TTFT {out['ttft_ms']:.2f} ms, decode {out['decode_ms_per_token']:.3f} ms/token, "
              f"total {out['total_ms']:.1f} ms for {out['prompt']} + {out['gen']} tokens, "
              f"{out['tokens_per_s_per_user']:.1f} tokens/s per user, {out['precision']} weights")
        if args.energy:
            _print_energy(out)
    else:
        print(f"{out['platform']} {out['model']} {label}: does not fit ({out['reason']})")
    return 0


def _price(value):
    """``--price-per-hour`` as a number (None when not given)."""
    return None if value is None else number("price-per-hour", value, 0, 1e6, above=True, what="USD per node-hour")


def _predict_energy(out: dict, price_per_hour) -> dict:
    """The energy and cost keys of one prediction (rdusim.scenarios.energy); NaN where it does not fit."""
    from rdusim.scenarios.energy import energy_arrays
    from rdusim.scenarios.predict_light import gpu_constants

    nan = float("nan")
    e = energy_arrays(out["platform"], out["model"], out["tp"], out["execution"], [out["batch"]], [out["prompt"]],
                      [out["gen"]], [nan if out["ttft_ms"] is None else out["ttft_ms"] / 1e3],
                      [nan if out["decode_ms_per_token"] is None else out["decode_ms_per_token"] / 1e3],
                      const=gpu_constants(), price_per_hour=_price(price_per_hour), stack=out.get("stack"),
                      precision=out.get("precision"), kv_precision_name=out.get("kv_precision"))
    return {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in e.items()}


def _cost_text(out: dict) -> str:
    price = out["price_usd_per_hour"]
    if price is None or price != price:  # NaN: no default price for this platform
        return "no price for this platform (give --price-per-hour)"
    return f"${out['cost_usd_per_mtok']:.3g} per million tokens at ${price:.2f}/h"


def _print_energy(out: dict) -> None:
    print(f"power: prefill {out['prefill_power_w']:.0f} W, decode {out['decode_power_w']:.0f} W, average "
          f"{out['avg_power_w']:.0f} W; {out['energy_j_per_token']:.3g} J per generated token (prefill "
          f"{out['prefill_j_per_token']:.3g} J per prompt token, decode {out['decode_j_per_token']:.3g}), "
          f"{out['tokens_per_joule']:.3g} tokens/J; " + _cost_text(out))
    print(f"  energy basis: {out['energy_basis']}")
    print(f"  price basis: {out['price_basis']}")


def _cmd_coe(args) -> int:
    from rdusim.scenarios.coe import COE_LIMITS, coe_latency

    sizes = {k: whole(k, getattr(args, k), 1, *COE_LIMITS[k]) for k in ("experts", "batch", "gen")}
    r = coe_latency(args.platform, sizes["experts"], sizes["batch"], sizes["gen"], args.profile)
    out = json_safe(r.as_dict())
    for key in ("router_s", "switching_s", "execution_s", "total_s"):
        out[key.replace("_s", "_ms")] = None if out[key] is None else out[key] * 1e3
        del out[key]
    if args.energy:
        from rdusim.scenarios.coe_energy import coe_energy

        out.update(json_safe(coe_energy(r, price_per_hour=_price(args.price_per_hour))))
    if args.json:
        _print_json(out)
    elif r.fits:
        print(f"{args.platform}, {args.experts} experts, batch {args.batch}, {args.gen} tokens ({args.profile}): "
              f"{out['total_ms']:.1f} ms = router {out['router_ms']:.1f} + switching {out['switching_ms']:.1f} "
              f"+ execution {out['execution_ms']:.1f} (expected {r.expected_misses:.2f} experts copied)")
        if args.energy:
            print(f"power: router {out['router_power_w']:.0f} W, switching {out['switching_power_w']:.0f} W, execution "
                  f"{out['execution_power_w']:.0f} W, average {out['avg_power_w']:.0f} W; {out['energy_j']:.4g} J per "
                  f"batch, {out['energy_j_per_token']:.3g} J per token; " + _cost_text(out))
            print(f"  energy basis: {out['energy_basis']}")
            print(f"  price basis: {out['price_basis']}")
    else:
        print(f"{args.platform}, {args.experts} experts: OOM ({r.reason})")
    return 0


def _cmd_serve_model(args) -> int:
    """``rdusim serve --model``: one model served by iteration-level engines (issue 22)."""
    from rdusim.scenarios.serve_model import MAX_CONCURRENCY, random_phase_closed_loop, simulate_model
    from rdusim.scenarios.traces import (
        MAX_TRACE_ROWS, closed_loop_requests, poisson_with_lengths, read_request_trace, retime)

    seed = whole("seed", args.seed, 0)
    rate = number("rate", args.rate, 0, above=True, what="requests per second")
    requests = whole("requests", args.requests, 1, MAX_TRACE_ROWS)
    concurrency = None
    if args.concurrency is not None:
        concurrency = whole("concurrency", args.concurrency, 1, MAX_CONCURRENCY)
        if args.trace or args.rate_given:
            raise ConfigError("concurrency", args.concurrency, "without --trace and --rate (a closed loop sets the "
                              "arrival times; lengths come from --prompt/--gen or --lengths-from)")
        lengths = read_request_trace(args.lengths_from) if args.lengths_from else None
        trace = closed_loop_requests(requests, whole("prompt", args.prompt, 1, 2**31), whole("gen", args.gen, 1, 2**31),
                                     lengths, seed=seed)
    elif args.trace:
        trace = read_request_trace(args.trace)
        if args.retime:
            trace = retime(trace, rate)
        trace = trace.iloc[:requests] if args.requests_given else trace
    else:
        lengths = read_request_trace(args.lengths_from) if args.lengths_from else None
        trace = poisson_with_lengths(rate, requests, whole("prompt", args.prompt, 1, 2**31),
                                     whole("gen", args.gen, 1, 2**31), lengths, seed=seed)
    ttft = number("ttft-slo-ms", args.ttft_slo_ms, 0, above=True, what="milliseconds")
    tpot = number("tpot-slo-ms", args.tpot_slo_ms, 0, above=True, what="milliseconds")
    if args.client_phases != "locked" and concurrency is None:
        raise ConfigError("client-phases", args.client_phases, "locked (the default) without --concurrency")
    options = dict(instances=None if args.instances is None else whole("instances", args.instances, 1, 2**10),
                   execution=args.execution, ttft_slo_s=ttft / 1e3, tpot_slo_s=tpot / 1e3,
                   max_batch=whole("max-batch", args.max_batch, 1, 4096),
                   max_wait_s=number("max-wait", args.max_wait, 0, 3600, what="seconds"),
                   stack=args.stack, settings=_engine_settings(args), precision=args.precision or DEFAULT_PRECISION,
                   kv_precision=args.kv_precision or DEFAULT_PRECISION)
    tp = whole("tp", args.tp, 1, 2**10)
    summary, per_request = simulate_model(args.platform, args.model, tp, trace, args.batching, concurrency=concurrency,
                                          **options)
    if args.client_phases == "random" and summary["fits"]:
        # Poisson arrivals at the rate that keeps `concurrency` in flight, bracketed by what the locked loop serves
        lengths = read_request_trace(args.lengths_from) if args.lengths_from else None
        summary, per_request, at = random_phase_closed_loop(
            args.platform, args.model, tp, concurrency, whole("prompt", args.prompt, 1, 2**31),
            whole("gen", args.gen, 1, 2**31), requests, requests // 4, summary["throughput_rps"], seed=seed,
            lengths=lengths,
            batching=args.batching, **options)
        summary = {**summary, "arrivals": f"closed loop of {concurrency}, random phases: Poisson at "
                   f"{at['rate_rps']:.4g} req/s ({at['in_flight']:.1f} in flight)", "rate_rps": at["rate_rps"]}
    _write_requests(args, per_request)
    summary = json_safe(summary)
    if args.json:
        _print_json(summary)
    elif summary["fits"]:
        print(f"{args.platform}, {args.model} (stack {summary['stack']}) on {summary['instances']} x TP{summary['tp']} "
              f"({summary['batching']}, at most {summary['max_num_seqs']:,} sequences, {summary['token_budget']:,} "
              f"tokens a step), "
              f"{summary['served']:,} requests served ({summary['rejected']:,} longer than the KV cache or context "
              f"window rejected): {summary['throughput_rps']:.2f} req/s, {summary['tokens_per_s_per_node']:,.0f} "
              f"output tokens/s")
        if concurrency is not None:
            print(f"  arrivals: {summary['arrivals']}")
        for m, name in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")):
            print(f"  {name:10s} mean {summary[m + '_ms_mean']:.1f} ms, p50 {summary[m + '_ms_p50']:.1f}, "
                  f"p90 {summary[m + '_ms_p90']:.1f}, p99 {summary[m + '_ms_p99']:.1f}")
        print(f"  goodput {summary['goodput_rps']:.2f} req/s within TTFT {summary['ttft_slo_ms']:g} ms and TPOT "
              f"{summary['tpot_slo_ms']:g} ms ({summary['slo_attainment']:.0%} of requests); mean batch "
              f"{summary['mean_batch']:.1f}, KV cache {summary['kv_cache_tokens']:,} tokens per instance")
        if summary["saturated"] and concurrency is None:
            print(f"saturated: {summary['offered_rps']:.2f} req/s offered, {summary['throughput_rps']:.2f} served; "
                  f"the queue grows for the whole run (lower --rate to measure a steady state)")
    else:
        print(f"{args.platform}, {args.model}: does not fit ({summary['reason']})")
    return 0


def _energy_arguments(parser) -> None:
    """``--energy`` and ``--price-per-hour``, as predict, coe and serve take them."""
    parser.add_argument("--energy", action="store_true", help="also report power, joules per token, tokens per joule "
                        "and cost per million tokens (rdusim/data/power_model.yaml, platform power blocks)")
    parser.add_argument("--price-per-hour", default=None, help="USD per node-hour for the cost (default: the "
                        "platform's published cloud list price in rdusim/data/prices.yaml, or an assumed one where "
                        "none is published)")


def _engine_settings(args) -> dict | None:
    """``--token-budget``: tokens per step of ``chunked`` (and the prompt tokens of a ``prefill-first`` step)."""
    if args.token_budget is None:
        return None
    budget = whole("token-budget", args.token_budget, 1, 2**31)
    return {"chunk_token_budget": budget, "prefill_token_budget": budget}  # over serving_engine.yaml's


def _write_requests(args, per_request) -> None:
    if args.requests_csv and len(per_request):
        try:
            per_request.to_csv(args.requests_csv, index=False)
        except OSError as exc:
            raise ConfigError("requests-csv", args.requests_csv, f"a writable file path ({exc.strerror})") from None


def _cmd_serve(args) -> int:
    if args.model is not None:
        if args.experts is not None:
            raise ConfigError("experts", args.experts, "absent with --model (a single-model deployment); "
                              "--experts alone serves a CoE")
        return _cmd_serve_model(args)
    if args.experts is None:
        raise ConfigError("experts", None, "a number of Llama-2-7B experts (a CoE), or --model M for one model")
    for flag, value in (("concurrency", args.concurrency), ("precision", args.precision),
                        ("kv-precision", args.kv_precision), ("token-budget", args.token_budget)):
        if value is not None:
            raise ConfigError(flag, value, "absent without --model (a CoE serves BF16 Llama-2-7B experts to Poisson "
                              "arrivals or a trace)")
    from rdusim.scenarios.serve import (
        GEN_TOKENS,
        MAX_EXPERTS,
        MAX_REQUESTS,
        MAX_SKEW,
        MAX_STREAM_REQUESTS,
        MAX_WAIT_S,
        light_load_floor,
        poisson_requests,
        read_trace,
        simulate,
        simulate_poisson,
        zipf_popularity,
    )

    experts = whole("experts", args.experts, 1, MAX_EXPERTS)
    stream = not (args.trace or args.requests_csv)  # no per-request table: arrivals and summaries streamed
    requests = whole("requests", args.requests, 1, MAX_STREAM_REQUESTS if stream else MAX_REQUESTS,
                     "requests of one run" if stream else "requests with a per-request table (--requests-csv)")
    seed = whole("seed", args.seed, 0)
    skew = number("zipf", args.zipf, 0, MAX_SKEW, what="Zipf skew of expert popularity")
    locality = number("locality", args.locality, 0, 1, below=True, what="probability of repeating the previous expert")
    rate = number("rate", args.rate, 0, above=True, what="requests per second")
    max_wait = number("max-wait", args.max_wait, 0, MAX_WAIT_S, what="seconds a batch waits to fill")
    if args.requests_csv:
        writable_file(args.requests_csv, "requests-csv", devices=True)  # before the simulation runs (/dev/stdout is fine)
    groups = whole("groups", args.groups, 1, 64)
    if stream:
        summary = simulate_poisson(args.platform, experts, rate, requests, skew, locality, seed, args.policy,
                                   max_wait_s=max_wait, profile=args.profile, groups=groups)
    else:
        trace = read_trace(args.trace, experts) if args.trace else \
            poisson_requests(rate, requests, experts, skew, locality, seed=seed)
        summary, per_request = simulate(args.platform, experts, trace, args.policy, max_wait_s=max_wait,
                                        popularity=zipf_popularity(experts, skew), profile=args.profile,
                                        per_request=bool(args.requests_csv), groups=groups)
        _write_requests(args, per_request)
    if summary["fits"] and summary["groups"] == 1:  # the floor of the whole-node (TP8) deployment
        summary["light_load_floor"] = light_load_floor(args.platform, experts, max_wait, profile=args.profile)
    if args.energy:
        from rdusim.scenarios.coe_energy import serve_energy

        summary.update(serve_energy(summary, gen=GEN_TOKENS, profile=args.profile,  # simulate()'s tokens a request
                                    price_per_hour=_price(args.price_per_hour)))
    summary = json_safe(summary)
    if args.json:
        _print_json(summary)
    elif summary["fits"]:
        f = {k: v * 1e3 for k, v in summary.get("light_load_floor", {}).items()}
        print(f"{args.platform}, {experts} experts, {summary['requests']} requests: p50 {summary['p50_s'] * 1e3:.0f} ms, "
              f"p99 {summary['p99_s'] * 1e3:.0f} ms, {summary['throughput_rps']:.2f} req/s, "
              f"HBM hit rate {summary['hbm_hit_rate']:.0%}, utilisation {summary['utilisation']:.0%}")
        print(f"{summary['groups']} groups of TP{summary['tp']} serving at the same time" if not f else
              f"light-load floor {f['floor_s']:.0f} ms = router batching wait {f['router_wait_s']:.0f} + router "
              f"{f['router_s']:.0f} + expert batching wait {f['expert_wait_s']:.0f} + expert {f['expert_s']:.0f} ms; "
              f"+ {f['copy_s']:.0f} ms when the expert is not in HBM (--max-wait sets both waits)")
        if summary.get("saturated"):
            print(f"saturated: {summary['offered_rps']:.2f} req/s offered, {summary['throughput_rps']:.2f} served, "
                  f"busy {summary['utilisation']:.0%} of the time; the queue grows for the whole run, so its "
                  f"percentiles grow with --requests (lower --rate to measure a steady state)")
        if args.energy:
            print(f"power: average {summary['avg_power_w']:.0f} W; {summary['energy_j_per_token']:.3g} J per token, "
                  + _cost_text(summary) + f" ({summary['energy_basis']}; price {summary['price_basis']})")
    else:
        print(f"{args.platform}, {experts} experts: OOM ({summary['reason']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rdusim", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rdusim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", formatter_class=DefaultsHelpFormatter, help="list known platforms, stacks and models").set_defaults(func=_cmd_list)
    pr = sub.add_parser("predict", formatter_class=DefaultsHelpFormatter, help="time to first token and decode time of a model on a platform",
                        description="Time to first token and decode time of a model on a platform. Defaults: "
                        "batch 1, tp 1, prompt 128 tokens, gen 128 tokens, and the platform's default serving stack "
                        "(default_stack in its file) in that stack's execution mode. Every result names its stack.")
    pr.add_argument("--platform", required=True, help="platform name (rdusim list) or a platform .yaml path")
    pr.add_argument("--model", required=True, help="model name (rdusim list) or a path to a Hugging Face config.json "
                    "(dense Llama, Mistral, Falcon, BLOOM, GPT-NeoX decoders; read offline)")
    pr.add_argument("--batch", default=1, help="sequences per batch (default 1); max: the largest batch that fits")
    pr.add_argument("--tp", default=1, help="tensor-parallel devices (default 1)")
    pr.add_argument("--prompt", default=128, help="prompt tokens L (default 128)")
    pr.add_argument("--gen", default=128, help="generated tokens G (default 128)")
    pr.add_argument("--execution", default=None,
                    help="GPU: eager, cuda-graph, fused; SN40L: unfused, fused-so, fused-ho "
                    "(default: the stack's; with no --stack, the platform's default stack when it runs this "
                    "execution, else kernel time only)")
    pr.add_argument("--stack", default=None,
                    help="serving stack (rdusim list) or a stack .yaml path: its execution and runtime work "
                    "(default: the platform file's default_stack); --execution must match the stack's, except "
                    "with --stack kernels (kernel time only, any execution)")
    pr.add_argument("--precision", default=None, help="weight format: bf16 (default), fp8, int8, int4 (weight-only)")
    pr.add_argument("--kv-precision", dest="kv_precision", default=None, help="KV-cache format: bf16 (default), fp8, int8")
    pr.add_argument("--hot-experts-in-hbm", dest="hot_experts_in_hbm", default=None,
                    help="SN40L, MoE model: routed experts per layer kept in HBM, most popular first (default: as many as fit)")
    pr.add_argument("--draft", default=None, help="speculative decoding: the draft model (rdusim list)")
    pr.add_argument("--draft-tokens", dest="draft_tokens", default=None,
                    help="tokens the draft proposes per verify step (default 4, rdusim/data/speculative.yaml)")
    pr.add_argument("--acceptance", default=None,
                    help="probability that the target accepts a drafted token (default: the fitted rate, speculative.yaml)")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    _energy_arguments(pr)
    pr.set_defaults(func=_cmd_predict)
    co = sub.add_parser("coe", formatter_class=DefaultsHelpFormatter, help="expected latency of a Samba-CoE batch (router, switching, execution)")
    co.add_argument("--platform", required=True, help="node platform: sn40l-node, dgx-a100, dgx-h100, dgx-h200, ...")
    co.add_argument("--experts", required=True, help="Llama-2-7B experts in the CoE")
    co.add_argument("--batch", default="1", help="prompts per CoE batch (default 1)")
    co.add_argument("--gen", default="20", help="output tokens per prompt (default 20)")
    co.add_argument("--profile", default="paper", help="assumption profile: paper, model, measured, measured-pageable")
    co.add_argument("--json", action="store_true", help="print one JSON object")
    _energy_arguments(co)
    co.set_defaults(func=_cmd_coe)
    sv = sub.add_parser("serve", formatter_class=DefaultsHelpFormatter, help="simulate serving a stream of requests on a CoE deployment",
                        description="Simulate serving a stream of requests on a CoE deployment (batches of up "
                        "to 8 requests per expert). Prints latency percentiles and the light-load floor: two "
                        "batching waits (router, expert), the router and the expert's run, and a copy on an HBM "
                        "miss.")
    sv.add_argument("--platform", required=True, help="node platform: sn40l-node, dgx-a100, dgx-h100, dgx-h200")
    sv.add_argument("--experts", help="Llama-2-7B experts of a CoE (without --model)")
    sv.add_argument("--model", help="serve one model (rdusim list) instead of a CoE: iteration-level engines")
    sv.add_argument("--tp", default="1", help="--model: devices per model instance (default 1)")
    sv.add_argument("--instances", default=None, help="--model: instances (default: devices / tp)")
    sv.add_argument("--prompt", default="128", help="--model: prompt tokens per request (default 128)")
    sv.add_argument("--gen", default="128", help="--model: output tokens per request (default 128)")
    sv.add_argument("--lengths-from", help="--model: draw each request's prompt and output lengths from this "
                    "trace (Azure 2023 CSV, or arrival_s,prompt,gen)")
    sv.add_argument("--retime", action="store_true", help="--model --trace: scale the trace's timestamps to --rate")
    sv.add_argument("--batching", default=None, choices=["prefill-first", "chunked", "static", "inflight"],
                    help="--model: prefill-first (vLLM), chunked prefill (Sarathi), static batches, or in-flight "
                    "batching of whole prompts with decodes (TensorRT-LLM) (default: the stack's scheduler, "
                    "else prefill-first)")
    sv.add_argument("--execution", default=None, help="--model: execution mode (as rdusim predict)")
    sv.add_argument("--stack", default=None, help="--model: serving stack (rdusim list) or a stack .yaml path "
                    "(default: the platform's serving_stack, trtllm on GPUs; with --execution, its default_stack "
                    "as rdusim predict)")
    sv.add_argument("--max-batch", default="8", help="--model --batching static: requests per batch (default 8)")
    sv.add_argument("--ttft-slo-ms", default="1000", help="--model: TTFT bound of goodput, ms (default 1000)")
    sv.add_argument("--tpot-slo-ms", default="100", help="--model: TPOT bound of goodput, ms (default 100)")
    sv.add_argument("--rate", default=None, help="Poisson arrival rate, requests/s (default 2)")
    sv.add_argument("--concurrency", default=None, help="--model: a closed loop of N clients instead of Poisson "
                    "arrivals: each sends its next request when the last one finishes (as genai-perf --concurrency)")
    sv.add_argument("--client-phases", default="locked", choices=["locked", "random"],
                    help="--concurrency: locked (each client sends its next request the moment its last one "
                    "finishes; identical requests then lock into one phase pattern) or random (the clients' "
                    "phases random: Poisson arrivals at the rate that keeps N in flight, Little's law)")
    sv.add_argument("--token-budget", default=None, help="--model: tokens per step (chunked: decode tokens first, then "
                    "prompt chunks; inflight: decode and whole-prompt tokens; default: the stack's scheduler, "
                    "else 512 for chunked (Sarathi-Serve) and 4096 prompt tokens for prefill-first)")
    sv.add_argument("--precision", default=None, help="--model: weight format: bf16 (default), fp8, int8, int4")
    sv.add_argument("--kv-precision", dest="kv_precision", default=None,
                    help="--model: KV-cache format: bf16 (default), fp8, int8")
    sv.add_argument("--requests", default=None, help="requests to simulate (default 10000; with --trace: its first N)")
    sv.add_argument("--zipf", default="0", help="Zipf skew of expert popularity (default 0: uniform)")
    sv.add_argument("--locality", default="0", help="probability a request repeats the previous expert (bursts)")
    sv.add_argument("--policy", default="lru", choices=["lru", "lfu", "pinned"], help="HBM expert cache policy")
    sv.add_argument("--max-wait", default="0.05", help="longest a request waits for its batch to fill, seconds "
                    "(default 0.05); a lone request waits this twice, for the router's batch and its expert's")
    sv.add_argument("--seed", default="0", help="random seed (default 0)")
    sv.add_argument("--profile", default="paper", help="assumption profile: paper, model, measured, measured-pageable")
    sv.add_argument("--trace", help="replay a CSV log instead of Poisson arrivals: arrival_s, expert (CoE); "
                    "arrival_s, prompt, gen or an Azure 2023 trace (--model)")
    sv.add_argument("--groups", default="1", help="CoE placement: 1 = every expert over all devices, one batch at a "
                    "time (the article's TP8); g = experts spread over g groups of devices/g (GPUs or sockets) "
                    "serving at the same time, each with 1/g of the HBM (default 1)")
    sv.add_argument("--requests-csv", help="write one row per request to this CSV")
    sv.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _energy_arguments(sv)
    sv.set_defaults(func=_cmd_serve)
    sub.add_parser("calibrate-gpu", formatter_class=DefaultsHelpFormatter, help="measure this machine's GPU (needs the gpu extra), fit the GPU model to it "
                   "(--models) and write a platform file usable as --platform FILE; --from-json rebuilds it from a "
                   "saved measurement without a GPU (rdusim calibrate-gpu --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rdusim`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["calibrate-gpu"]:  # its own argument parser
        from baselines.calibrate import main as calibrate_main

        return calibrate_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "serve":
        args.requests_given = args.requests is not None
        args.requests = "10000" if args.requests is None else args.requests
        args.rate_given = args.rate is not None
        args.rate = "2" if args.rate is None else args.rate
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except RdusimError as err:
        print(f"rdusim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("rdusim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("RDUSIM_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]  # one line, and never a long echo of anything it holds
        print(f"rdusim: internal error (a bug; please report it with the command line, and set RDUSIM_DEBUG=1 "
              f"for the traceback): {exc.__class__.__name__}: {text}", file=sys.stderr)
        return EXIT_BUG


def run() -> int:
    """The ``rdusim`` program (console script, ``python -m rdusim.cli``): :func:`main` on ``sys.argv``, then the
    heap frozen (:func:`gc.freeze`). Interpreter shutdown runs the cyclic garbage collector over every object
    still alive (numba's compiler and type system, pandas), about 0.6 s of a 3 s ``rdusim serve``; frozen
    objects are skipped, and nothing is lost as the process ends. Callers of :func:`main` in a long-lived
    process (the tests) keep their collector as it is."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
