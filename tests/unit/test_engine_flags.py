"""Engine flags (``slogate.core.engine_flags``): what ``engine.args`` may do with the flags slogate derives.

Three kinds of check:

1. **Command lines.** A table of user ``engine.args`` x engine gives the exact command line
   ``desired.engine_args`` builds, or the exact ``ValueError`` it raises. No flag is ever repeated
   (TGI's clap parser rejects that), and an overridable flag in any spelling replaces slogate's.
   SGLang has no entrypoint in its image, so its rows start at ``--model-path`` (the container's
   ``command`` is ``python3 -m sglang.launch_server``, tests/unit/test_desired.py).
2. **Offline validation and the CRD agree.** ``slogate validate`` reports each rejected entry at
   ``spec.engine.args[i]``; the CEL rules generated from the same tables reject the same manifests
   (exact spellings) at ``spec.engine.args``.
3. **Provenance.** ``READ_FROM_SOURCE`` lists every flag slogate derives or keeps off the command
   line, copied by hand from the engines' released source with file and line. The table must name
   exactly these, ``desired`` may emit nothing else, and, when the engine source is on disk
   (``SLOGATE_VLLM_SRC``, ``SLOGATE_SGLANG_SRC``, ``SLOGATE_TGI_GIT``), every cited line must
   contain the flag. These tests are marked ``engine_source``; without the source they are
   *deselected* and listed in the terminal summary (tests/unit/conftest.py), never skipped and
   never passed without having looked. ``make engine-sources`` fetches the vLLM and SGLang wheels
   from PyPI and runs them.
"""

from __future__ import annotations

import copy
import doctest
import re
import subprocess
from functools import cache
from typing import Any

import pytest

import slogate.core.engine_flags
from slogate.api.v1alpha1 import STARTUP_TIMEOUT_MESSAGE, EngineKind, ModelDeploymentSpec
from slogate.api.validation import _cel_problems, _schema, validate_document
from slogate.core import engine_flags as ef
from slogate.core.desired import engine_args
from tests.unit.conftest import SGLANG_SRC, TGI_GIT, VLLM_SRC

# ------------------------------------------------------------------------------------ provenance

READ_FROM_SOURCE: dict[str, dict[str, str]] = {
    # vLLM 0.33.0, from the release wheel (vllm/_version.py: 0.33.0, commit g4ba787ec9).
    "vllm": {
        "--model": "vllm/engine/arg_utils.py:969",
        "--served-model-name": "vllm/engine/arg_utils.py:1031",
        "--tensor-parallel-size": "vllm/engine/arg_utils.py:1209",
        "-tp": "vllm/engine/arg_utils.py:1209",
        "--pipeline-parallel-size": "vllm/engine/arg_utils.py:1171",
        "-pp": "vllm/engine/arg_utils.py:1171",
        "--port": "vllm/entrypoints/common/cli_args.py:295",
        "--revision": "vllm/engine/arg_utils.py:986",
        "--gpu-memory-utilization": "vllm/engine/arg_utils.py:1389",
        "--device-memory-utilization": "vllm/engine/arg_utils.py:1389",
        "--load-format": "vllm/engine/arg_utils.py:1085",
        "--disable-log-stats": "vllm/engine/arg_utils.py:1920",
        "--custom-histogram-buckets": "vllm/engine/arg_utils.py:1705",
        "--enable-lora": "vllm/engine/arg_utils.py:1610",
        "--lora-modules": "vllm/entrypoints/common/cli_args.py:81",
        "--max-loras": "vllm/engine/arg_utils.py:1614",
        "--max-lora-rank": "vllm/engine/arg_utils.py:1615",
    },
    # TGI v3.3.7 (tag dfb3fbe7); the pinned image is 3.3.6, whose launcher/src/main.rs differs only
    # after line 1260 (automatic num_shard), so these lines are the same there.
    "tgi": {
        "--model-id": "launcher/src/main.rs:588",
        "--revision": "launcher/src/main.rs:593",
        "--num-shard": "launcher/src/main.rs:611",
        "--port": "launcher/src/main.rs:773",
        "-p": "launcher/src/main.rs:773",
        "--lora-adapters": "launcher/src/main.rs:888",
    },
    # SGLang 0.5.23, from the release wheel (sglang/_version.py: 0.5.23). Flags are generated from
    # annotated fields ("--" + name with "_" -> "-", plus declared aliases: arg_utils.py:288-290, 328).
    "sglang": {
        "--model-path": "sglang/srt/arg_groups/fields/model.py:51",
        "--model": "sglang/srt/arg_groups/fields/model.py:51",
        "--served-model-name": "sglang/srt/arg_groups/fields/serving.py:168",
        "--tp-size": "sglang/srt/arg_groups/fields/parallel.py:45",
        "--tensor-parallel-size": "sglang/srt/arg_groups/fields/parallel.py:45",
        "--pp-size": "sglang/srt/arg_groups/fields/parallel.py:59",
        "--pipeline-parallel-size": "sglang/srt/arg_groups/fields/parallel.py:59",
        "--host": "sglang/srt/arg_groups/fields/serving.py:65",
        "--port": "sglang/srt/arg_groups/fields/serving.py:66",
        "--revision": "sglang/srt/arg_groups/fields/model.py:122",
        "--enable-metrics": "sglang/srt/arg_groups/fields/observability.py:70",
        "--enable-metrics-for-all-schedulers": "sglang/srt/arg_groups/fields/observability.py:82",
        "--bucket-time-to-first-token": "sglang/srt/arg_groups/fields/observability.py:104",
        "--bucket-inter-token-latency": "sglang/srt/arg_groups/fields/observability.py:108",
        "--bucket-e2e-request-latency": "sglang/srt/arg_groups/fields/observability.py:112",
        "--enable-lora": "sglang/srt/arg_groups/fields/lora.py:34",
        "--max-lora-rank": "sglang/srt/arg_groups/fields/lora.py:42",
        "--lora-paths": "sglang/srt/arg_groups/fields/lora.py:54",
        "--max-loras-per-batch": "sglang/srt/arg_groups/fields/lora.py:66",
    },
}


@cache
def _vllm_lines(path: str) -> list[str] | None:
    file = VLLM_SRC / path
    return file.read_text().splitlines() if file.is_file() else None


@cache
def _sglang_lines(path: str) -> list[str] | None:
    file = SGLANG_SRC / path
    return file.read_text().splitlines() if file.is_file() else None


@cache
def _tgi_lines(path: str) -> list[str] | None:
    if not TGI_GIT.exists():
        return None
    done = subprocess.run(
        ["git", "-C", str(TGI_GIT), "show", f"{ef.TGI_VERSION}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.splitlines() if done.returncode == 0 else None


def _lines(kind: str, path: str) -> list[str]:
    reader = {"vllm": _vllm_lines, "sglang": _sglang_lines, "tgi": _tgi_lines}[kind]
    lines = reader(path)
    if lines is None:
        where = {"vllm": VLLM_SRC / path, "sglang": SGLANG_SRC / path}.get(
            kind, f"{TGI_GIT} ({ef.TGI_VERSION}:{path})"
        )
        pytest.fail(
            f"{kind} source not on disk: {where} (set SLOGATE_VLLM_SRC / SLOGATE_SGLANG_SRC / SLOGATE_TGI_GIT)"
        )
    return lines


def _sources(table: ef.EngineFlags) -> list[tuple[str, ef.Source]]:
    out = [(f.name, f.source) for f in table.flags] + [("dialect", table.dialect.source)]
    for extra in (table.dialect.positional_model, table.dialect.unquoted_entrypoint):
        if extra is not None:
            out.append(("dialect", extra))
    return out


def test_there_is_one_table_per_engine_kind():
    assert set(ef.ENGINES) == {k.value for k in EngineKind}


@pytest.mark.parametrize("kind", sorted(READ_FROM_SOURCE))
def test_the_table_names_exactly_the_flags_read_from_the_source(kind):
    table = ef.ENGINES[kind]
    cited = {n: f"{f.source.path}:{f.source.line}" for f in table.flags for n in f.names}
    assert cited == READ_FROM_SOURCE[kind]


@pytest.mark.parametrize(
    "kind, what, source",
    [
        pytest.param(kind, what, source, id=f"{kind}-{what}-{source.path.rsplit('/', 1)[-1]}:{source.line}")
        for kind, table in ef.ENGINES.items()
        for what, source in _sources(table)
    ],
)
@pytest.mark.engine_source
def test_every_cited_line_contains_what_the_table_says(kind, what, source):
    lines = _lines(kind, source.path)
    assert source.texts[0] in lines[source.line - 1], f"{what}: {source.texts[0]!r} not on {source}"
    window = "\n".join(lines[source.line - 1 : source.line - 1 + source.span])
    for text in source.texts[1:]:
        assert text in window, f"{what}: {text!r} not within {source.span} lines of {source}:\n{window}"


@pytest.mark.engine_source(kind="vllm")
def test_no_vllm_option_is_a_proper_prefix_of_a_table_flag():
    """The abbreviation rule is sound: a prefix of a table flag is never another vLLM option exactly."""
    options: set[str] = set()
    for path in ("vllm/engine/arg_utils.py", "vllm/entrypoints/common/cli_args.py"):
        text = "\n".join(_lines("vllm", path))
        options |= set(re.findall(r'"(--[a-z0-9][a-z0-9-]*)"', text))
        options |= {"--" + m.replace("_", "-") for m in re.findall(r"^    ([a-z][a-z0-9_]*): ", text, re.M)}
    assert len(options) > 250
    for flag in ef.VLLM.flags:
        for name in (n for n in flag.names if n.startswith("--")):
            assert name in options, f"{name} is not a vLLM 0.33 option"
            assert [o for o in options if name.startswith(o) and o != name] == []


@pytest.mark.engine_source(kind="vllm")
def test_vllm_flexible_parser_reads_underscores_as_dashes_and_takes_the_positional_model():
    text = "\n".join(_lines("vllm", "vllm/utils/argparse_utils.py"))
    assert 'return match.group(0).replace("_", "-")' in text
    assert "The `--model` option will be removed in a future version." in text
    serve = "\n".join(_lines("vllm", "vllm/entrypoints/cli/serve.py"))
    assert "args.model = args.model_tag" in serve
    assert "allow_abbrev" not in text  # argparse's default (unique prefixes accepted) applies


def _sglang_options() -> set[str]:
    """Every long option SGLang 0.5.23's server parser registers, read from its source: one per
    annotated field of the ``fields/`` namespaces (renamed by ``cli_name=``, plus ``aliases=``), and
    those ``server_args.py`` adds by hand."""
    options: set[str] = set()
    fields = SGLANG_SRC / "sglang/srt/arg_groups/fields"
    for path in sorted(fields.glob("*.py")):
        text = "\n".join(_lines("sglang", str(path.relative_to(SGLANG_SRC))))
        options |= {
            "--" + m.replace("_", "-") for m in re.findall(r"^    ([a-z][a-z0-9_]*): A\[", text, re.M)
        }
        options |= set(re.findall(r'cli_name="(--[a-z0-9-]+)"', text))
        for group in re.findall(r"aliases=\[([^\]]*)\]", text):
            options |= set(re.findall(r'"(--[a-z0-9][a-z0-9-]*)"', group))
    text = "\n".join(_lines("sglang", "sglang/srt/server_args.py"))
    return options | set(re.findall(r'"(--[a-z0-9][a-z0-9-]*)"', text))


@pytest.mark.engine_source(kind="sglang")
def test_no_sglang_option_outside_the_table_is_a_proper_prefix_of_a_table_flag():
    """The abbreviation rule is sound: an exact SGLang option is never taken for a table flag it is a
    prefix of (``--model`` and ``--enable-metrics`` are prefixes of table flags, but in the table)."""
    options = _sglang_options()
    assert len(options) > 400
    table = {n for f in ef.SGLANG.flags for n in f.names}
    for flag in ef.SGLANG.flags:
        for name in flag.names:
            assert name in options, f"{name} is not an SGLang 0.5.23 option"
            assert [o for o in options - table if name.startswith(o)] == []
    assert not [o for o in options if not o.startswith("--")], "SGLang registers no short options"


@pytest.mark.engine_source(kind="sglang")
def test_sglang_parser_is_plain_argparse_with_prefixes_dashes_only_and_last_wins():
    server_args = "\n".join(_lines("sglang", "sglang/srt/server_args.py"))
    assert 'parser = argparse.ArgumentParser(prog="sglang serve")' in server_args
    assert "raw_args = parser.parse_args(argv)" in server_args  # unknown flags exit 2
    abbrev_off = sorted(
        str(p.relative_to(SGLANG_SRC))
        for p in (SGLANG_SRC / "sglang/srt").rglob("*.py")
        if "allow_abbrev" in p.read_text()
    )
    # Only the gRPC sidecar's own parser turns prefixes off; the server's keeps argparse's default.
    assert abbrev_off == ["sglang/srt/entrypoints/sidecar.py"]
    arg_utils = "\n".join(_lines("sglang", "sglang/srt/arg_groups/arg_utils.py"))
    assert 'return "--" + name.replace("_", "-")' in arg_utils  # dashes only: --tp_size is unknown
    merger = "\n".join(_lines("sglang", "sglang/srt/utils/server_args_config_parser.py"))
    assert "return config_args + before_config + after_config" in merger  # the CLI wins: last wins
    launch = "\n".join(_lines("sglang", "sglang/launch_server.py"))
    assert "server_args = prepare_server_args(sys.argv[1:])" in launch


# ------------------------------------------------------------------------------------ command lines

NAME = "llama"
HF = "meta-llama/Llama-3.1-8B-Instruct"
VLLM_DEFAULTS = (
    f"{HF} --served-model-name llama --tensor-parallel-size 1 --port 8000 --gpu-memory-utilization 0.90"
)
VLLM_NO_GMU = f"{HF} --served-model-name llama --tensor-parallel-size 1 --port 8000"
TGI_DEFAULTS = f"--model-id {HF} --num-shard 1 --port 8000"
SGLANG_DEFAULTS = (
    f"--model-path {HF} --served-model-name llama --tp-size 1 --host 0.0.0.0 --port 8000 --enable-metrics"
)
NO_FEATURES = {"observability": {"inputDrift": {"enabled": False}}}
TTFT_SLO = {"slo": {"objectives": [{"metric": "ttft", "percentile": 95, "max": "500ms"}]}}
PORT = "--port is set by slogate from engine.port; set engine.port instead"
TP = "--tensor-parallel-size (-tp) is set by slogate from engine.tensorParallelSize; set engine.tensorParallelSize instead"
TGI_PORT = "--port (-p) is set by slogate from engine.port; set engine.port instead"
SHARDS = "--num-shard is set by slogate from resources.gpu.count; set resources.gpu.count instead"
NO_STATS = "--disable-log-stats turns off every vllm:* series, which "
DRIFT = NO_STATS + (
    "observability.inputDrift needs (on by default): remove the flag or set "
    "observability.inputDrift.enabled to false"
)
TTFT_BUCKETS = (
    "--custom-histogram-buckets replaces vLLM's time_to_first_token buckets, and the burn-rate alert rules "
    "slogate generates for ttft objectives select vLLM's default le bounds, so they would never fire: "
    "leave time_to_first_token out of the flag"
)
LATENCY_SLO = {"slo": {"objectives": [{"metric": "latency", "percentile": 95, "max": "20s"}]}}
ITL_SLO = {"slo": {"objectives": [{"metric": "interTokenLatency", "percentile": 95, "max": "50ms"}]}}
SG_MODEL = "--model-path (--model) is set by slogate from model.source; set model.source instead"
SG_TP = (
    "--tp-size (--tensor-parallel-size) is set by slogate from engine.tensorParallelSize; "
    "set engine.tensorParallelSize instead"
)
SG_HOST = (
    "--host is set by slogate to 0.0.0.0; remove it: probes, Services and Prometheus reach the pod on its "
    "own address"
)
SG_METRICS = (
    "--enable-metrics is always set by slogate; remove it: it is already on the command line, because "
    "slogate reads SGLang's metrics"
)
SG_ALL_SCHEDULERS = (
    "--enable-metrics-for-all-schedulers makes every tensor-parallel rank record the queue, running and "
    "KV-usage gauges, and the autoscaler sums them, so with more than one GPU per replica it would see "
    "each replica's load once per rank: remove the flag"
)


def sg_buckets(flag: str, series: str, metric: str) -> str:
    return (
        f"{flag} replaces the buckets of SGLang's {series}, and the burn-rate alert rules slogate generates "
        f"for {metric} objectives select SGLang's default le bounds, so they would never fire: remove the flag"
    )


UNQUOTED = (
    "TGI's image entrypoint passes arguments on unquoted (tgi-entrypoint.sh:6 @ v3.3.7: exec "
    "text-generation-launcher $@), so "
)


def spec_of(kind: str, args: list[str], extra: dict[str, Any] | None = None) -> ModelDeploymentSpec:
    raw: dict[str, Any] = {"model": {"source": f"hf://{HF}"}, "engine": {"kind": kind, "args": args}}
    raw.update(copy.deepcopy(NO_FEATURES if extra is None else extra))
    return ModelDeploymentSpec.model_validate(raw)


ACCEPTED = [
    # --- vLLM: passed through as written, after the derived flags
    pytest.param("vllm", [], None, VLLM_DEFAULTS, id="vllm-no-args-positional-model-first"),
    pytest.param("vllm", ["--max-model-len=8192", "--enable-prefix-caching"], None,
                 f"{VLLM_DEFAULTS} --max-model-len=8192 --enable-prefix-caching", id="vllm-passthrough-bool"),
    pytest.param("vllm", ["--enforce-eager", "--max-num-seqs", "64"], None,
                 f"{VLLM_DEFAULTS} --enforce-eager --max-num-seqs 64", id="vllm-bool-then-value-flag"),
    # --- vLLM: an overridable flag replaces the derived one, in every spelling
    pytest.param("vllm", ["--gpu-memory-utilization", "0.95"], None,
                 f"{VLLM_NO_GMU} --gpu-memory-utilization 0.95", id="vllm-override-space"),
    pytest.param("vllm", ["--gpu-memory-utilization=0.95"], None,
                 f"{VLLM_NO_GMU} --gpu-memory-utilization=0.95", id="vllm-override-equals"),
    pytest.param("vllm", ["--gpu_memory_utilization", "0.95"], None,
                 f"{VLLM_NO_GMU} --gpu_memory_utilization 0.95", id="vllm-override-underscores"),
    pytest.param("vllm", ["--gpu-memory_utilization=0.95"], None,
                 f"{VLLM_NO_GMU} --gpu-memory_utilization=0.95", id="vllm-override-mixed-underscores"),
    pytest.param("vllm", ["--device-memory-utilization", "0.8"], None,
                 f"{VLLM_NO_GMU} --device-memory-utilization 0.8", id="vllm-override-alias"),
    pytest.param("vllm", ["--gpu-mem", "0.8"], None, f"{VLLM_NO_GMU} --gpu-mem 0.8", id="vllm-override-abbreviation"),
    pytest.param("vllm", ["--max-model-len", "4096", "--gpu-memory-utilization", "0.5"], None,
                 f"{VLLM_NO_GMU} --max-model-len 4096 --gpu-memory-utilization 0.5", id="vllm-override-not-first"),
    pytest.param("vllm", ["--load-format", "runai_streamer_sharded"], {"model": {"source": "s3://b/llama"}, **NO_FEATURES},
                 "s3://b/llama --served-model-name llama --tensor-parallel-size 1 --port 8000"
                 " --gpu-memory-utilization 0.90 --load-format runai_streamer_sharded", id="vllm-override-load-format-s3"),
    pytest.param("vllm", ["--load-format=safetensors"], None, f"{VLLM_DEFAULTS} --load-format=safetensors",
                 id="vllm-load-format-without-derived"),
    # --- vLLM: metric flags are fine when nothing needs the series
    pytest.param("vllm", ["--disable-log-stats"], None, f"{VLLM_DEFAULTS} --disable-log-stats",
                 id="vllm-disable-log-stats-without-features"),
    pytest.param("vllm", ["--custom-histogram-buckets", '{"request_tokens":[1,10,100]}'], TTFT_SLO,
                 f'{VLLM_DEFAULTS} --custom-histogram-buckets {{"request_tokens":[1,10,100]}}',
                 id="vllm-buckets-of-a-family-no-rule-uses"),
    pytest.param("vllm", ["--custom-histogram-buckets", '{"time_to_first_token":[0.1,1]}'], None,
                 f'{VLLM_DEFAULTS} --custom-histogram-buckets {{"time_to_first_token":[0.1,1]}}',
                 id="vllm-ttft-buckets-without-a-ttft-objective"),
    pytest.param("vllm", ["--port-x"], None, f"{VLLM_DEFAULTS} --port-x", id="vllm-not-a-prefix-of-a-table-flag"),
    # --- TGI: passed through as written
    pytest.param("tgi", ["--max-total-tokens", "4096"], None, f"{TGI_DEFAULTS} --max-total-tokens 4096",
                 id="tgi-passthrough"),
    pytest.param("tgi", ["--trust-remote-code", "--max-input-tokens=2048"], None,
                 f"{TGI_DEFAULTS} --trust-remote-code --max-input-tokens=2048", id="tgi-bool-and-equals"),
    pytest.param("tgi", ["--cors-allow-origin=*"], None, f"{TGI_DEFAULTS} --cors-allow-origin=*",
                 id="tgi-glob-in-equals-form-matches-no-file"),
    # Not slogate's flags to police: clap rejects them itself (no underscore spellings, no such flag).
    pytest.param("tgi", ["--num_shard", "2"], None, f"{TGI_DEFAULTS} --num_shard 2", id="tgi-underscore-is-not-num-shard"),
    pytest.param("tgi", ["--disable-log-stats"], None, f"{TGI_DEFAULTS} --disable-log-stats",
                 id="tgi-has-no-vllm-metric-flags"),
    # --- SGLang: passed through as written, after the derived flags (no positional model)
    pytest.param("sglang", [], None, SGLANG_DEFAULTS, id="sglang-no-args"),
    pytest.param("sglang", ["--mem-fraction-static", "0.85", "--context-length=8192", "--trust-remote-code"], None,
                 f"{SGLANG_DEFAULTS} --mem-fraction-static 0.85 --context-length=8192 --trust-remote-code",
                 id="sglang-passthrough-value-equals-bool"),
    pytest.param("sglang", ["--model-impl", "transformers"], None, f"{SGLANG_DEFAULTS} --model-impl transformers",
                 id="sglang-option-starting-like-model-is-not-model"),
    pytest.param("sglang", [], {"model": {"source": "s3://b/qwen"}, **NO_FEATURES},
                 "--model-path s3://b/qwen --served-model-name llama --tp-size 1 --host 0.0.0.0 --port 8000"
                 " --enable-metrics", id="sglang-s3-no-load-format-sglang-picks-runai-itself"),
    # Not slogate's to police: plain argparse has no underscore spellings, and --enable-metric is a
    # prefix of two options, so SGLang rejects both itself.
    pytest.param("sglang", ["--tp_size", "2"], None, f"{SGLANG_DEFAULTS} --tp_size 2", id="sglang-underscore-is-unknown"),
    pytest.param("sglang", ["--enable-metric"], None, f"{SGLANG_DEFAULTS} --enable-metric",
                 id="sglang-ambiguous-prefix-left-to-sglang"),
    # --- SGLang: metric flags are fine when nothing needs the series they reshape
    pytest.param("sglang", ["--enable-metrics-for-all-schedulers"], {**TTFT_SLO, "budget": {"maxCostPerMillionTokens": "2"}},
                 f"{SGLANG_DEFAULTS} --enable-metrics-for-all-schedulers", id="sglang-all-schedulers-with-slo-and-budget"),
    pytest.param("sglang", ["--bucket-time-to-first-token", "0.1", "0.5", "1"], None,
                 f"{SGLANG_DEFAULTS} --bucket-time-to-first-token 0.1 0.5 1", id="sglang-ttft-buckets-without-ttft-objective"),
    pytest.param("sglang", ["--bucket-inter-token-latency", "0.01", "0.1"], TTFT_SLO,
                 f"{SGLANG_DEFAULTS} --bucket-inter-token-latency 0.01 0.1", id="sglang-itl-buckets-with-only-a-ttft-objective"),
    pytest.param("sglang", ["--prompt-tokens-buckets", "custom", "10", "100"], {},
                 f"{SGLANG_DEFAULTS} --prompt-tokens-buckets custom 10 100", id="sglang-token-buckets-with-drift"),
    pytest.param("sglang", ["--disable-log-stats"], {}, f"{SGLANG_DEFAULTS} --disable-log-stats",
                 id="sglang-has-no-vllm-metric-flags"),
]  # fmt: skip


@pytest.mark.parametrize("kind, args, extra, expected", ACCEPTED)
def test_command_line(kind, args, extra, expected):
    got = engine_args(name=NAME, spec=spec_of(kind, args, extra))
    assert got == expected.split(" ")


REJECTED = [
    # --- vLLM: owned flags, every spelling
    pytest.param("vllm", ["--port", "9000"], None, [(0, PORT)], id="vllm-port-space"),
    pytest.param("vllm", ["--max-model-len", "8192", "--port=9000"], None, [(2, PORT)], id="vllm-port-equals"),
    pytest.param("vllm", ["--model", "other/model"], None,
                 [(0, "--model is set by slogate from model.source; set model.source instead")], id="vllm-model"),
    pytest.param("vllm", ["--model=other/model"], None,
                 [(0, "--model is set by slogate from model.source; set model.source instead")], id="vllm-model-equals"),
    pytest.param("vllm", ["--served-model-name", "chat"], None,
                 [(0, "--served-model-name is set by slogate from model.servedName; set model.servedName instead "
                      "(slogate adds the fallback aliases itself)")], id="vllm-served-name"),
    pytest.param("vllm", ["--served_model_name=chat"], None,
                 [(0, "--served_model_name is --served-model-name to vLLM (underscores read as dashes); "
                      "--served-model-name is set by slogate from model.servedName; set model.servedName instead "
                      "(slogate adds the fallback aliases itself)")], id="vllm-served-name-underscores"),
    pytest.param("vllm", ["-tp", "2"], None, [(0, TP)], id="vllm-tp-short"),
    pytest.param("vllm", ["-tp=2"], None, [(0, TP)], id="vllm-tp-short-equals"),
    pytest.param("vllm", ["--tensor-parallel-size", "2"], None, [(0, TP)], id="vllm-tp-long"),
    pytest.param("vllm", ["--tensor-parallel", "2"], None,
                 [(0, f"--tensor-parallel is --tensor-parallel-size to vLLM (a unique prefix); {TP}")],
                 id="vllm-tp-abbreviation"),
    pytest.param("vllm", ["-pp", "2"], None,
                 [(0, "--pipeline-parallel-size (-pp) is set by slogate from resources.gpu.count / "
                      "engine.tensorParallelSize; set engine.tensorParallelSize below resources.gpu.count instead")],
                 id="vllm-pp-short"),
    pytest.param("vllm", ["--revision", "main"], None,
                 [(0, "--revision is set by slogate from model.revision; set model.revision instead")], id="vllm-revision"),
    pytest.param("vllm", ["--port", "1", "-tp", "2"], None, [(0, PORT), (2, TP)], id="vllm-two-owned"),
    # --- vLLM: flags that blind a feature
    pytest.param("vllm", ["--disable-log-stats"], {}, [(0, DRIFT)], id="vllm-no-stats-drift-by-default"),
    pytest.param("vllm", ["--disable-log-stats"], {**TTFT_SLO, **NO_FEATURES},
                 [(0, NO_STATS + "slo needs: every analysis would be Inconclusive, so no rollout could be judged: "
                      "remove the flag")], id="vllm-no-stats-slo"),
    pytest.param("vllm", ["--disable_log_stats"], {"autoscaling": {"maxReplicas": 2}, **NO_FEATURES},
                 [(0, "--disable_log_stats is --disable-log-stats to vLLM (underscores read as dashes); " + NO_STATS
                      + "autoscaling needs: the autoscaler would have no metric to scale on: remove the flag")],
                 id="vllm-no-stats-autoscaling-underscores"),
    pytest.param("vllm", ["--disable-log-stats"], {"budget": {"maxCostPerMillionTokens": "2"}, **NO_FEATURES},
                 [(0, NO_STATS + "budget needs: the cost per million tokens could not be measured: remove the flag")],
                 id="vllm-no-stats-budget"),
    pytest.param("vllm", ["--custom-histogram-buckets", '{"time_to_first_token":[0.1,1]}'], TTFT_SLO,
                 [(0, TTFT_BUCKETS)], id="vllm-ttft-buckets-with-a-ttft-objective"),
    pytest.param("vllm", ["--custom-histogram-buckets.time_to_first_token+", "0.1,1"], TTFT_SLO,
                 [(0, TTFT_BUCKETS)], id="vllm-ttft-buckets-dotted"),
    # --- TGI: owned flags (clap would reject the repeat and crash-loop the pod)
    pytest.param("tgi", ["--num-shard=2"], None, [(0, SHARDS)], id="tgi-num-shard-equals"),
    pytest.param("tgi", ["--num-shard", "2"], None, [(0, SHARDS)], id="tgi-num-shard-space"),
    pytest.param("tgi", ["--port", "80"], None, [(0, TGI_PORT)], id="tgi-port"),
    pytest.param("tgi", ["-p", "80"], None, [(0, TGI_PORT)], id="tgi-port-short"),
    pytest.param("tgi", ["-p80"], None, [(0, TGI_PORT)], id="tgi-port-short-attached"),
    pytest.param("tgi", ["--model-id=x/y"], None,
                 [(0, "--model-id is set by slogate from model.source; set model.source instead")], id="tgi-model-id"),
    pytest.param("tgi", ["--revision", "v2"], None,
                 [(0, "--revision is set by slogate from model.revision; set model.revision instead")], id="tgi-revision"),
    # --- TGI: the image's entrypoint passes "$@" unquoted
    pytest.param("tgi", ["--api-key", "two words"], None,
                 [(1, UNQUOTED + "whitespace splits this argument in two: set the option through engine.env instead "
                      "(every launcher option also reads an environment variable, e.g. --api-key as API_KEY)")],
                 id="tgi-whitespace"),
    pytest.param("tgi", ["--cors-allow-origin", "*"], None,
                 [(1, UNQUOTED + "a value with * ? or [ may be replaced by file names: write it as --flag=value, "
                      "or set the option through engine.env")], id="tgi-bare-glob"),
    # --- SGLang: owned flags, every spelling (argparse's last-wins would silently override slogate's)
    pytest.param("sglang", ["--model-path", "other/model"], None, [(0, SG_MODEL)], id="sglang-model-path"),
    pytest.param("sglang", ["--model=other/model"], None, [(0, SG_MODEL)], id="sglang-model-alias-equals"),
    pytest.param("sglang", ["--model-p", "other/model"], None,
                 [(0, f"--model-p is --model-path to SGLang (a unique prefix); {SG_MODEL}")], id="sglang-model-abbreviation"),
    pytest.param("sglang", ["--served-model-name", "chat"], None,
                 [(0, "--served-model-name is set by slogate from model.servedName; set model.servedName instead")],
                 id="sglang-served-name"),
    pytest.param("sglang", ["--tp-size", "2"], None, [(0, SG_TP)], id="sglang-tp"),
    pytest.param("sglang", ["--tensor-parallel-size=2"], None, [(0, SG_TP)], id="sglang-tp-alias-equals"),
    pytest.param("sglang", ["--tp", "2"], None, [(0, f"--tp is --tp-size to SGLang (a unique prefix); {SG_TP}")],
                 id="sglang-tp-abbreviation"),
    pytest.param("sglang", ["--pipeline-parallel-size", "2"], None,
                 [(0, "--pp-size (--pipeline-parallel-size) is set by slogate from resources.gpu.count / "
                      "engine.tensorParallelSize; set engine.tensorParallelSize below resources.gpu.count instead")],
                 id="sglang-pp-alias"),
    pytest.param("sglang", ["--host", "0.0.0.0"], None, [(0, SG_HOST)], id="sglang-host"),
    pytest.param("sglang", ["--host=::"], None, [(0, SG_HOST)], id="sglang-host-equals"),
    pytest.param("sglang", ["--port", "30000"], None, [(0, PORT)], id="sglang-port"),
    pytest.param("sglang", ["--revision", "main"], None,
                 [(0, "--revision is set by slogate from model.revision; set model.revision instead")], id="sglang-revision"),
    pytest.param("sglang", ["--enable-metrics"], None, [(0, SG_METRICS)], id="sglang-enable-metrics"),
    pytest.param("sglang", ["--port", "1", "--tp-size", "2"], None, [(0, PORT), (2, SG_TP)], id="sglang-two-owned"),
    # --- SGLang: flags that reshape the series a feature reads
    pytest.param("sglang", ["--enable-metrics-for-all-schedulers"], {"autoscaling": {"maxReplicas": 2}, **NO_FEATURES},
                 [(0, SG_ALL_SCHEDULERS)], id="sglang-all-schedulers-with-autoscaling"),
    pytest.param("sglang", ["--enable-metrics-for"], {"autoscaling": {"maxReplicas": 2}, **NO_FEATURES},
                 [(0, "--enable-metrics-for is --enable-metrics-for-all-schedulers to SGLang (a unique prefix); "
                      + SG_ALL_SCHEDULERS)], id="sglang-all-schedulers-abbreviation"),
    pytest.param("sglang", ["--bucket-time-to-first-token", "0.1", "1"], TTFT_SLO,
                 [(0, sg_buckets("--bucket-time-to-first-token", "sglang:time_to_first_token_seconds", "ttft"))],
                 id="sglang-ttft-buckets-with-ttft-objective"),
    pytest.param("sglang", ["--bucket-time", "0.1"], TTFT_SLO,
                 [(0, "--bucket-time is --bucket-time-to-first-token to SGLang (a unique prefix); "
                      + sg_buckets("--bucket-time-to-first-token", "sglang:time_to_first_token_seconds", "ttft"))],
                 id="sglang-ttft-buckets-abbreviation"),
    pytest.param("sglang", ["--bucket-e2e-request-latency", "1", "10"], LATENCY_SLO,
                 [(0, sg_buckets("--bucket-e2e-request-latency", "sglang:e2e_request_latency_seconds", "latency"))],
                 id="sglang-e2e-buckets-with-latency-objective"),
    pytest.param("sglang", ["--bucket-inter-token-latency=0.01"], ITL_SLO,
                 [(0, sg_buckets("--bucket-inter-token-latency", "sglang:inter_token_latency_seconds",
                                 "interTokenLatency"))], id="sglang-itl-buckets-with-itl-objective"),
]  # fmt: skip


@pytest.mark.parametrize("kind, args, extra, expected", REJECTED)
def test_rejected(kind, args, extra, expected):
    spec = spec_of(kind, args, extra)
    with pytest.raises(ValueError) as err:
        engine_args(name=NAME, spec=spec)
    assert str(err.value) == "; ".join(f"engine.args[{i}]: {m}" for i, m in expected)


def _derived_options(kind: str, line: list[str], user: list[str]) -> list[str]:
    return [a for a in line[: len(line) - len(user)] if a.startswith("-")]


@pytest.mark.parametrize("kind, args, extra, expected", ACCEPTED)
def test_no_flag_appears_twice_and_every_derived_flag_was_read_from_the_source(kind, args, extra, expected):
    line = engine_args(name=NAME, spec=spec_of(kind, args, extra))
    table = ef.ENGINES[kind]
    seen = [m.flag.name for a in line if (m := table.resolve(a)) is not None]
    assert len(seen) == len(set(seen)), f"repeated flag in {line}"
    for option in _derived_options(kind, line, args):
        assert option in READ_FROM_SOURCE[kind], f"{option} is derived but not read from the {kind} source"


@pytest.mark.parametrize(
    "kind, extra",
    [
        pytest.param("vllm", {"resources": {"gpu": {"count": 4}}, "engine": {"tensorParallelSize": 2}}, id="vllm-pp"),
        pytest.param("vllm", {"model": {"source": "gs://b/m", "revision": "x"}}, id="vllm-gs"),
        pytest.param("vllm", {"model": {"source": "hf://o/m", "revision": "abc", "servedName": "chat"}}, id="vllm-rev"),
        pytest.param("tgi", {"resources": {"gpu": {"count": 2}}, "model": {"source": "hf://o/m", "revision": "v"}},
                     id="tgi-rev-shards"),
        pytest.param("sglang", {"resources": {"gpu": {"count": 4}}, "engine": {"tensorParallelSize": 2},
                                "model": {"source": "hf://o/m", "revision": "abc", "servedName": "chat"}},
                     id="sglang-pp-rev"),
        pytest.param("sglang", {"model": {"source": "gs://b/m"}}, id="sglang-gs"),
    ],
)  # fmt: skip
def test_every_flag_desired_derives_is_read_from_the_source(kind, extra):
    raw = {"model": {"source": "hf://o/m"}, **NO_FEATURES, **extra}
    raw["engine"] = {**raw.get("engine", {}), "kind": kind}
    line = engine_args(name=NAME, spec=ModelDeploymentSpec.model_validate(raw), aliases=("alias",))
    options = [a for a in line if a.startswith("-")]
    assert options and all(o in READ_FROM_SOURCE[kind] for o in options), options
    if kind == "vllm":
        assert not line[0].startswith("-"), "vLLM's model is the first positional argument"
    if kind == "sglang":
        assert "alias" not in line, "SGLang takes one served name and answers any model a request names"


def test_merge_refuses_a_derived_flag_that_is_not_in_the_table():
    with pytest.raises(ValueError, match="--max-model-len is derived but not in the vLLM flag table"):
        ef.merge(kind="vllm", derived=[ef.Derived("--max-model-len", ("1",))], user=[])
    with pytest.raises(ValueError, match="is never derived"):
        ef.merge(kind="vllm", derived=[ef.Derived("--disable-log-stats", ())], user=[])
    with pytest.raises(ValueError, match="TGI takes no positional model"):
        ef.merge(kind="tgi", derived=[ef.Derived(None, ("m",))], user=[])
    with pytest.raises(ValueError, match="SGLang takes no positional model"):
        ef.merge(kind="sglang", derived=[ef.Derived(None, ("m",))], user=[])
    with pytest.raises(ValueError, match="is never derived"):
        ef.merge(kind="sglang", derived=[ef.Derived("--enable-metrics-for-all-schedulers", ())], user=[])


# ------------------------------------------------------------------------------ validation and CEL


def manifest(kind: str, args: list[str], extra: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"source": f"hf://{HF}"}, "engine": {"kind": kind, "args": args}}
    spec.update(copy.deepcopy(NO_FEATURES if extra is None else extra))
    return {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": spec,
    }


@pytest.mark.parametrize("kind, args, extra, expected", REJECTED)
def test_validate_reports_each_entry_at_its_index(kind, args, extra, expected):
    got = [(p.path, p.message) for p in validate_document(manifest(kind, args, extra))]
    assert got == [(f"spec.engine.args[{i}]", m) for i, m in expected]


@pytest.mark.parametrize("kind, args, extra, expected", ACCEPTED)
def test_validate_accepts_what_desired_builds(kind, args, extra, expected):
    assert validate_document(manifest(kind, args, extra)) == []


@pytest.mark.parametrize("kind, args, extra, expected", REJECTED + ACCEPTED)
def test_the_crd_rules_reject_the_same_manifests_in_exact_spellings(kind, args, extra, expected):
    """The API server's share: the generated CEL rules fire for exactly the rules ``check`` applies
    (abbreviations excepted: they are left to offline validation and the operator)."""
    doc = manifest(kind, args, extra)
    cel = {p.message for p in _cel_problems(_schema(), doc, "") if p.path == "spec.engine.args"}
    features = ef.features_of(doc["spec"])
    table = ef.ENGINES[kind]
    expected_rules = {
        p.rule
        for p in ef.check(kind=kind, args=args, features=features)
        if (m := table.resolve(args[p.index])) is None or m.how != "abbreviation"
    }
    assert cel == expected_rules


def test_every_generated_rule_compiles_and_guards_absent_fields():
    rules = ef.engine_cel_rules(default_kind="vllm") + ef.spec_cel_rules(default_kind="vllm")
    assert len(rules) == 31  # vLLM 6 owned + 7 metric, TGI 4 owned + 2 quoting, SGLang 8 owned + 4 metric
    for r in rules:
        assert "\\" not in r.rule.replace("\\t", "").replace("\\n", ""), r.rule  # no regex escapes to mangle
        assert "has(self.args)" in r.rule or "has(self.engine.args)" in r.rule
    schema = _schema()
    engine_rules = schema["properties"]["spec"]["properties"]["engine"]["x-kubernetes-validations"]
    assert {r["message"] for r in engine_rules} == {
        r.message for r in ef.engine_cel_rules(default_kind="vllm")
    } | {STARTUP_TIMEOUT_MESSAGE}  # the one engine rule that is not about flags
    # The rules evaluate (not error) on a spec without engine, args, slo or observability.
    bare = {"apiVersion": "slogate.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "m"},
            "spec": {"model": {"source": "hf://o/m"}}}  # fmt: skip
    assert validate_document(bare) == []


@pytest.mark.parametrize(
    "arg, kind, how",
    [
        ("--port", "vllm", "exact"),
        ("--port=1", "vllm", "exact"),
        ("--port.x", "vllm", "exact"),
        ("-tp=2", "vllm", "exact"),
        ("--tensor_parallel-size", "vllm", "underscores"),
        ("--served-model", "vllm", "abbreviation"),
        ("--p", "vllm", None),  # a prefix of --port and --pipeline-parallel-size: ambiguous
        ("value", "vllm", None),
        ("--", "vllm", None),
        ("-p8000", "tgi", "exact"),
        ("--po", "tgi", None),  # clap accepts no abbreviations
        ("--port_x", "tgi", None),
        ("--model", "sglang", "exact"),
        ("--model=o/m", "sglang", "exact"),
        ("--enable-metrics", "sglang", "exact"),  # not a prefix of --enable-metrics-for-all-schedulers
        ("--enable-metrics=1", "sglang", "exact"),
        ("--enable-metric", "sglang", None),  # a prefix of two table flags: ambiguous
        ("--tensor_parallel_size", "sglang", None),  # no underscore spellings
        ("--host.x", "sglang", None),  # no dotted keys
        ("--ho", "sglang", "abbreviation"),
    ],
)
def test_resolve(arg, kind, how):
    match = ef.ENGINES[kind].resolve(arg)
    assert (match.how if match else None) == how


def test_features_follow_the_api_defaults():
    assert ef.features_of({}) == {ef.Feature.INPUT_DRIFT}
    assert ef.features_of(NO_FEATURES) == frozenset()
    full = {
        "slo": {
            "objectives": [{"metric": "latency"}, {"metric": "interTokenLatency"}, {"metric": "errorRate"}]
        },
        "autoscaling": {},
        "budget": {},
        "observability": {"inputDrift": {"enabled": True}},
    }
    assert ef.features_of(full) == {
        ef.Feature.SLO,
        ef.Feature.LATENCY_OBJECTIVE,
        ef.Feature.ITL_OBJECTIVE,
        ef.Feature.AUTOSCALING,
        ef.Feature.BUDGET,
        ef.Feature.INPUT_DRIFT,
    }


def test_doctests():
    result = doctest.testmod(slogate.core.engine_flags)
    assert result.attempted >= 8 and result.failed == 0
