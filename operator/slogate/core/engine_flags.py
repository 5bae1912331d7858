"""The engine flags slogate derives, and what a user's ``engine.args`` may do with them. Pure.

One table per engine kind (``ENGINES``) lists every flag slogate writes on the engine's command
line, or must keep off it. Each entry has its aliases, the line of the engine's own source that
defines it, and a policy with its reason:

- ``Owned``: slogate derives the flag from a spec field that probes, Services, metrics or fallback
  aliases depend on. A user flag is rejected, and the message names the field to set instead.
- ``Overridable``: slogate's value is only a default, and no spec field sets it. A user flag
  replaces it: the derived flag is dropped, never repeated (TGI's clap parser rejects a repeated
  option, so "last occurrence wins" is not something both engines do).
- ``BreaksMetrics``: slogate never writes the flag. A user flag is rejected while a spec feature
  needs the series that the flag removes or reshapes.

Each engine's ``Dialect`` records how its parser reads an argument: ``--flag value``,
``--flag=value``, short aliases, for vLLM underscores read as dashes and dotted JSON keys, and for
vLLM and SGLang (both plain argparse underneath) unique prefixes. ``resolve`` therefore recognises
a flag in every spelling the engine accepts.

Consumed by ``core.desired.engine_args`` (``merge``), ``api.validation`` (``check``, one problem
per argument index) and ``api.v1alpha1`` (``engine_cel_rules`` and ``spec_cel_rules``: the API
server's share of the same checks, generated from the same tables). This module imports only the
standard library, so ``api`` can import it without an import cycle. See
docs/engines-flags-notes.md.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VLLM_VERSION = "v0.33.0"
TGI_VERSION = "v3.3.7"
SGLANG_VERSION = "0.5.23"


class Policy(enum.StrEnum):
    """What a user's ``engine.args`` may do with a flag in the table."""

    OWNED = "Owned"
    """Derived from a spec field that slogate relies on; a user flag is rejected."""
    OVERRIDABLE = "Overridable"
    """A derived default without a spec field; a user flag replaces it."""
    BREAKS_METRICS = "BreaksMetrics"
    """Never derived; rejected while a spec feature needs the series it removes or reshapes."""


class Feature(enum.StrEnum):
    """Spec features that read the engine's own metric series."""

    SLO = "slo"
    """Rollout analysis and fallback (every objective, ``minRequests``)."""
    AUTOSCALING = "autoscaling"
    """The KEDA or HPA metric."""
    BUDGET = "budget"
    """Cost per million generated tokens."""
    INPUT_DRIFT = "observability.inputDrift"
    """Prompt and generation length histograms (on by default)."""
    TTFT_OBJECTIVE = "ttft"
    """An ``slo.objectives`` entry with metric ``ttft``."""
    LATENCY_OBJECTIVE = "latency"
    """An ``slo.objectives`` entry with metric ``latency``."""
    ITL_OBJECTIVE = "interTokenLatency"
    """An ``slo.objectives`` entry with metric ``interTokenLatency``."""


@dataclass(frozen=True)
class Source:
    """Lines of an engine's source at a version: ``texts[0]`` is on ``line``, the rest within the
    next ``span - 1`` lines."""

    path: str
    """Path inside the engine's release (the vLLM and SGLang wheels, the TGI git tag)."""
    line: int
    """First line (1-based)."""
    texts: tuple[str, ...]
    """Literal text those lines contain; a test checks it when the source is on disk."""
    version: str
    """The release read."""
    span: int = 3
    """How many lines, from ``line``, hold ``texts`` (SGLang declares a flag's aliases a few lines
    below its field)."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line} @ {self.version}"


@dataclass(frozen=True)
class Needs:
    """A spec feature that a ``BreaksMetrics`` flag breaks, and the message that says so."""

    feature: Feature
    """The feature."""
    message: str
    """What breaks, in words; also the CEL rule's message."""
    mention: str | None = None
    """When set, the flag breaks the feature only if some argument contains this text (a bucket
    family name given to ``--custom-histogram-buckets``)."""


@dataclass(frozen=True)
class Flag:
    """One flag of an engine's command line, as slogate treats it."""

    name: str
    """Canonical spelling, e.g. ``--tensor-parallel-size``."""
    policy: Policy
    """What a user flag does: rejected, replaces slogate's value, or rejected while a feature needs it."""
    source: Source
    """Where the engine defines it."""
    reason: str
    """Why this policy."""
    aliases: tuple[str, ...] = ()
    """Other spellings the engine registers for the same option, e.g. ``-tp``."""
    field: str = ""
    """``Owned``: the spec field slogate derives the value from (empty: no spec field sets it)."""
    fixed: str = ""
    """``Owned`` without a spec field: the value slogate always writes (empty for a bare switch)."""
    instead: str = ""
    """``Owned``: what to do instead, in words."""
    needs: tuple[Needs, ...] = ()
    """``BreaksMetrics``: the features it breaks."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every registered spelling: the canonical name, then the aliases."""
        return (self.name, *self.aliases)

    @property
    def display(self) -> str:
        """The name with its aliases, as messages show it.

        >>> VLLM.flag("--tensor-parallel-size").display
        '--tensor-parallel-size (-tp)'
        """
        return self.name + (f" ({', '.join(self.aliases)})" if self.aliases else "")

    @property
    def owned_message(self) -> str:
        """The rejection message of an ``Owned`` flag (also its CEL rule's message).

        >>> VLLM.flag("--port").owned_message
        '--port is set by slogate from engine.port; set engine.port instead'
        >>> SGLANG.flag("--host").owned_message.split(";")[0]
        '--host is set by slogate to 0.0.0.0'
        """
        if self.field:
            return f"{self.display} is set by slogate from {self.field}; {self.instead}"
        if self.fixed:
            return f"{self.display} is set by slogate to {self.fixed}; {self.instead}"
        return f"{self.display} is always set by slogate; {self.instead}"


@dataclass(frozen=True)
class Dialect:
    """How an engine's parser reads its arguments, so that every spelling it accepts is recognised."""

    parser: str
    """The parser, in words."""
    source: Source
    """Where the engine builds it."""
    underscores: bool
    """``--flag_name`` is ``--flag-name`` (vLLM's FlexibleArgumentParser)."""
    dotted: bool
    """``--flag.key value`` sets a key of the JSON value of ``--flag`` (vLLM)."""
    abbreviations: bool
    """A unique prefix of a long option selects it (argparse's default ``allow_abbrev``)."""
    repeated: str
    """What the parser does when an option is given twice."""
    positional_model: Source | None = None
    """Where the engine takes the model as its first positional argument, if it does."""
    unquoted_entrypoint: Source | None = None
    """Where the image's entrypoint passes arguments on unquoted (whitespace splits, globs expand)."""


@dataclass(frozen=True)
class Match:
    """A user argument recognised as a flag in the table."""

    flag: Flag
    """The flag."""
    spelled: str
    """The argument's option part as written (before ``=``), never its value."""
    how: str
    """``exact`` (a registered spelling), ``underscores`` or ``abbreviation``."""


@dataclass(frozen=True)
class ArgProblem:
    """One rejected ``engine.args`` entry."""

    index: int
    """Index in ``engine.args``."""
    message: str
    """What is wrong, for that argument as written."""
    rule: str
    """The message of the CEL rule that rejects the same thing in the API server (for de-duplication)."""


@dataclass(frozen=True)
class Derived:
    """A flag slogate derives, with its values; ``flag=None`` is the positional model argument."""

    flag: str | None
    """A registered spelling from the engine's table, or ``None`` for the positional model."""
    values: tuple[str, ...]
    """What follows it on the command line (``--served-model-name`` takes several)."""


@dataclass(frozen=True)
class EngineFlags:
    """The flag table of one engine kind."""

    kind: str
    """``EngineKind`` value, e.g. ``vllm``."""
    label: str
    """Name in messages, e.g. ``vLLM``."""
    version: str
    """The release the table was read from."""
    dialect: Dialect
    """How its parser reads arguments."""
    flags: tuple[Flag, ...]
    """Every flag slogate derives or keeps off the command line."""
    _by_name: dict[str, Flag] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in self.flags:
            for n in f.names:
                if n in self._by_name:
                    raise ValueError(f"{self.kind}: {n} appears twice in the flag table")
                self._by_name[n] = f

    def flag(self, name: str) -> Flag:
        """The table entry for a registered spelling; ``KeyError`` for a flag not in the table."""
        return self._by_name[name]

    def pattern(self, flag: Flag) -> str:
        """A regular expression matching every exact spelling of ``flag`` the parser accepts: each
        name, with ``=value`` (and for vLLM ``.key``) attached, with underscores for dashes (vLLM),
        and a single-letter short option with its value attached (``-p8000``). Uses no backslash,
        so the same text works in Python, in RE2 and inside a CEL string literal.

        >>> VLLM.pattern(VLLM.flag("--tensor-parallel-size"))
        '^(--tensor[-_]parallel[-_]size|-tp)([=.]|$)'
        >>> TGI.pattern(TGI.flag("--port"))
        '^(--port(=|$)|-p)'
        """
        tail = "([=.]|$)" if self.dialect.dotted else "(=|$)"
        alternatives: list[str] = []
        attached: list[str] = []
        for n in flag.names:
            if n.startswith("--"):
                body = n[2:].replace("-", "[-_]") if self.dialect.underscores else n[2:]
                alternatives.append("--" + body)
            elif len(n) == 2:
                attached.append(n)
            else:
                alternatives.append(n)
        if attached:
            return "^(" + "|".join([f"{a}{tail}" for a in alternatives] + attached) + ")"
        return "^(" + "|".join(alternatives) + ")" + tail

    def resolve(self, arg: str) -> Match | None:
        """The table flag an argument is, in any spelling the engine accepts; ``None`` otherwise.

        A value (an argument not starting with ``-``) is never a flag. With vLLM and SGLang, an
        argument that is a proper prefix of exactly one long flag in the table is that flag
        (argparse accepts a unique prefix; a prefix that is ambiguous among the engine's options
        fails in the engine itself).

        >>> VLLM.resolve("--tensor_parallel_size=2").how
        'underscores'
        >>> VLLM.resolve("--gpu-memory=0.8").flag.name
        '--gpu-memory-utilization'
        >>> TGI.resolve("--num_shard") is None  # clap has no underscore spelling: TGI rejects it itself
        True
        >>> SGLANG.resolve("--tp_size") is None  # plain argparse: SGLang rejects it itself
        True
        >>> SGLANG.resolve("--enable-metrics-for-all=1").flag.name
        '--enable-metrics-for-all-schedulers'
        """
        if not arg.startswith("-") or arg in ("-", "--"):
            return None
        option = arg.split("=", 1)[0]
        base = option.split(".", 1)[0] if self.dialect.dotted and option.startswith("--") else option
        for f in self.flags:
            if re.match(self.pattern(f), arg):
                attached = not option.startswith("--") and option[:2] in f.names  # -p8000
                return Match(f, option, "exact" if base in f.names or attached else "underscores")
        if not (self.dialect.abbreviations and base.startswith("--") and len(base) > 2):
            return None
        name = base.replace("_", "-") if self.dialect.underscores else base
        hits = {f for f in self.flags for n in f.names if n.startswith("--") and n.startswith(name)}
        return Match(hits.pop(), option, "abbreviation") if len(hits) == 1 else None


# --------------------------------------------------------------------------------------- vLLM

_VA = "vllm/engine/arg_utils.py"
_VC = "vllm/entrypoints/common/cli_args.py"


def _vllm(path: str, line: int, *texts: str) -> Source:
    return Source(path, line, texts, VLLM_VERSION)


_SERIES_OFF = "--disable-log-stats turns off every vllm:* series"
_BUCKETS = (
    "--custom-histogram-buckets replaces vLLM's {family} buckets, and the burn-rate alert rules "
    "slogate generates for {metric} objectives select vLLM's default le bounds, so they would never "
    "fire: leave {family} out of the flag"
)

VLLM = EngineFlags(
    kind="vllm",
    label="vLLM",
    version=VLLM_VERSION,
    dialect=Dialect(
        parser="argparse with vLLM's FlexibleArgumentParser",
        source=_vllm("vllm/utils/argparse_utils.py", 156, "class FlexibleArgumentParser(ArgumentParser):"),
        underscores=True,  # argparse_utils.py:374-394 rewrites `_` to `-` before the first `.`
        dotted=True,  # argparse_utils.py:462-491: `--flag.key value` becomes `--flag '{"key": value}'`
        abbreviations=True,  # no allow_abbrev=False anywhere in vLLM: argparse's default applies
        repeated="last wins (argparse stores each occurrence in turn)",
        positional_model=_vllm(_VC, 439, '"model_tag",'),
    ),
    flags=(
        Flag(
            "--model",
            Policy.OWNED,
            _vllm(_VA, 969, 'model_group.add_argument("--model"'),
            "slogate passes the model as vLLM's positional argument (entrypoints/cli/serve.py:56-57: "
            "the positional model wins over --model, so a user --model would be silently ignored; "
            "utils/argparse_utils.py:324-354 deprecates --model with `vllm serve`)",
            field="model.source",
            instead="set model.source instead",
        ),
        Flag(
            "--served-model-name",
            Policy.OWNED,
            _vllm(_VA, 1031, '"--served-model-name"'),
            "clients, fallback aliases and the simulator bridge use the served names; the first one "
            "also labels every vllm:* series (config/model.py:2323-2334)",
            field="model.servedName",
            instead="set model.servedName instead (slogate adds the fallback aliases itself)",
        ),
        Flag(
            "--tensor-parallel-size",
            Policy.OWNED,
            _vllm(_VA, 1209, '"--tensor-parallel-size", "-tp"'),
            "engine.tensorParallelSize sets it; with resources.gpu.count it also fixes pipeline "
            "parallelism and the GPUs requested",
            aliases=("-tp",),
            field="engine.tensorParallelSize",
            instead="set engine.tensorParallelSize instead",
        ),
        Flag(
            "--pipeline-parallel-size",
            Policy.OWNED,
            _vllm(_VA, 1171, '"--pipeline-parallel-size",', '"-pp",'),
            "it is resources.gpu.count / engine.tensorParallelSize: a different value would not use "
            "the GPUs the pod requests",
            aliases=("-pp",),
            field="resources.gpu.count / engine.tensorParallelSize",
            instead="set engine.tensorParallelSize below resources.gpu.count instead",
        ),
        Flag(
            "--port",
            Policy.OWNED,
            # FrontendArgs field; the flag name is generated at cli_args.py:283.
            _vllm(_VC, 295, "port: int = 8000"),
            "probes, the container port, Services, the PodMonitor and scrape annotations use engine.port",
            field="engine.port",
            instead="set engine.port instead",
        ),
        Flag(
            "--revision",
            Policy.OWNED,
            _vllm(_VA, 986, 'model_group.add_argument("--revision"'),
            "model.revision is part of the revision hash: a new model revision must roll out as a new "
            "slogate revision, with analysis",
            field="model.revision",
            instead="set model.revision instead",
        ),
        Flag(
            "--gpu-memory-utilization",
            Policy.OVERRIDABLE,
            _vllm(_VA, 1389, '"--gpu-memory-utilization",', '"--device-memory-utilization",'),
            "a tuning default (0.90) with no spec field; nothing in slogate depends on its value",
            aliases=("--device-memory-utilization",),
        ),
        Flag(
            "--load-format",
            Policy.OVERRIDABLE,
            _vllm(_VA, 1085, 'load_group.add_argument("--load-format"'),
            "runai_streamer is derived for s3:// and gs:// only so vLLM can read them; another loader "
            "(runai_streamer_sharded, a local format) is the user's choice and has no spec field",
        ),
        Flag(
            "--enable-lora",
            Policy.OVERRIDABLE,
            _vllm(_VA, 1610, '"--enable-lora",', "action=argparse.BooleanOptionalAction,"),
            "derived from spec.adapters (each adapter a served name, a change of adapters a new revision); without spec.adapters a user may pass it as before. Both at once are rejected (core.desired.lora_conflicts)",
        ),
        Flag(
            "--lora-modules",
            Policy.OVERRIDABLE,
            _vllm(_VC, 81, "lora_modules: list[LoRAModulePath] | None = None"),
            "derived from spec.adapters (each adapter a served name, a change of adapters a new revision); without spec.adapters a user may pass it as before. Both at once are rejected (core.desired.lora_conflicts)",
        ),
        Flag(
            "--max-loras",
            Policy.OVERRIDABLE,
            _vllm(_VA, 1614, 'lora_group.add_argument("--max-loras", **lora_kwargs["max_loras"])'),
            "a default from spec.adapters (every adapter may be in one batch); a tuning choice a user may replace",
        ),
        Flag(
            "--max-lora-rank",
            Policy.OVERRIDABLE,
            _vllm(_VA, 1615, 'lora_group.add_argument("--max-lora-rank", **lora_kwargs["max_lora_rank"])'),
            "a default from spec.adapters[].rank (the smallest rank vLLM accepts that holds every adapter); "
            "a tuning choice a user may replace",
        ),
        Flag(
            "--disable-log-stats",
            Policy.BREAKS_METRICS,
            _vllm(_VA, 1920, '"--disable-log-stats",'),
            "v1/engine/async_llm.py:204-210: without log stats there is no StatLoggerManager, so no vllm:* "
            "series exist at all",
            needs=(
                Needs(
                    Feature.SLO,
                    f"{_SERIES_OFF}, which slo needs: every analysis would be Inconclusive, so no "
                    "rollout could be judged: remove the flag",
                ),
                Needs(
                    Feature.AUTOSCALING,
                    f"{_SERIES_OFF}, which autoscaling needs: the autoscaler would have no metric to "
                    "scale on: remove the flag",
                ),
                Needs(
                    Feature.BUDGET,
                    f"{_SERIES_OFF}, which budget needs: the cost per million tokens could not be "
                    "measured: remove the flag",
                ),
                Needs(
                    Feature.INPUT_DRIFT,
                    f"{_SERIES_OFF}, which observability.inputDrift needs (on by default): remove the "
                    "flag or set observability.inputDrift.enabled to false",
                ),
            ),
        ),
        Flag(
            "--custom-histogram-buckets",
            Policy.BREAKS_METRICS,
            _vllm(_VA, 1705, '"--custom-histogram-buckets",'),
            "config/observability.py:70-80 and v1/metrics/loggers.py:821-844: a family listed replaces "
            "the default bounds, while core/rules.py selects vLLM's default le bounds",
            needs=(
                Needs(
                    Feature.TTFT_OBJECTIVE,
                    _BUCKETS.format(family="time_to_first_token", metric="ttft"),
                    mention="time_to_first_token",
                ),
                Needs(
                    Feature.LATENCY_OBJECTIVE,
                    _BUCKETS.format(family="request_latency", metric="latency"),
                    mention="request_latency",
                ),
                Needs(
                    Feature.ITL_OBJECTIVE,
                    _BUCKETS.format(family="inter_token_latency", metric="interTokenLatency"),
                    mention="inter_token_latency",
                ),
            ),
        ),
    ),
)
"""vLLM 0.33.0 (``vllm serve``, the image's ENTRYPOINT), read from the release wheel."""


# ---------------------------------------------------------------------------------------- TGI

_TM = "launcher/src/main.rs"


def _tgi(path: str, line: int, *texts: str) -> Source:
    return Source(path, line, texts, TGI_VERSION)


TGI = EngineFlags(
    kind="tgi",
    label="TGI",
    version=TGI_VERSION,
    dialect=Dialect(
        parser="clap 4.5.32 (derive), per TGI's Cargo.lock",
        source=_tgi(_TM, 580, "#[derive(Parser, Debug)]"),
        underscores=False,  # clap derives kebab-case long names only
        dotted=False,
        abbreviations=False,  # infer_long_args is not enabled (main.rs:581)
        repeated="error: the argument '--port <PORT>' cannot be used multiple times",
        unquoted_entrypoint=_tgi("tgi-entrypoint.sh", 6, "exec text-generation-launcher $@"),
    ),
    flags=(
        Flag(
            "--model-id",
            Policy.OWNED,
            _tgi(_TM, 588, "long, env", "model_id: String,"),
            "derived from model.source (a Hub id or the mounted path of pvc:// and oci:// weights)",
            field="model.source",
            instead="set model.source instead",
        ),
        Flag(
            "--revision",
            Policy.OWNED,
            _tgi(_TM, 593, "#[clap(long, env)]", "revision: Option<String>,"),
            "model.revision is part of the revision hash: a new model revision must roll out as a new "
            "slogate revision, with analysis",
            field="model.revision",
            instead="set model.revision instead",
        ),
        Flag(
            "--num-shard",
            Policy.OWNED,
            _tgi(_TM, 611, "#[clap(long, env)]", "num_shard: Option<usize>,"),
            "TGI shards over every GPU of the pod (a CEL rule already requires "
            "engine.tensorParallelSize to equal resources.gpu.count); fewer shards would leave "
            "requested GPUs idle, more would not start",
            field="resources.gpu.count",
            instead="set resources.gpu.count instead",
        ),
        Flag(
            "--port",
            Policy.OWNED,
            _tgi(_TM, 773, "long, short, env", "port: u16,"),
            "probes, the container port, Services, the PodMonitor and scrape annotations use "
            "engine.port. Its short form is -p: prometheus_port (main.rs:777) derives -p too, and in a "
            "release build clap's MKeyMap::get returns the first argument declared, port (inferred "
            "from clap's source, not run)",
            aliases=("-p",),
            field="engine.port",
            instead="set engine.port instead",
        ),
        Flag(
            "--lora-adapters",
            Policy.OVERRIDABLE,
            _tgi(_TM, 888, "#[clap(long, env)]", "lora_adapters: Option<String>,"),
            "derived from spec.adapters (each adapter a served name, a change of adapters a new revision); without spec.adapters a user may pass it as before. Both at once are rejected (core.desired.lora_conflicts)",
        ),
    ),
)
"""TGI v3.3.7 (``text-generation-launcher``, started by the image's ``tgi-entrypoint.sh``)."""


# ------------------------------------------------------------------------------------- SGLang

_SF = "sglang/srt/arg_groups/fields"


def _sglang(path: str, line: int, *texts: str, span: int = 3) -> Source:
    return Source(path, line, texts, SGLANG_VERSION, span)


_SG_BUCKETS = (
    "{flag} replaces the buckets of SGLang's {series}, and the burn-rate alert rules slogate "
    "generates for {metric} objectives select SGLang's default le bounds, so they would never fire: "
    "remove the flag"
)

SGLANG = EngineFlags(
    kind="sglang",
    label="SGLang",
    version=SGLANG_VERSION,
    dialect=Dialect(
        parser="plain argparse (prepare_server_args builds ArgumentParser(prog='sglang serve') and calls parse_args)",
        source=_sglang(
            "sglang/srt/server_args.py", 679, 'parser = argparse.ArgumentParser(prog="sglang serve")'
        ),
        underscores=False,  # names are "--" + field name with "_" -> "-" (arg_utils.py:288-290); argparse keeps them
        dotted=False,
        abbreviations=True,  # allow_abbrev is not turned off: only benchmark/ and sidecar.py do
        repeated=(
            "last wins (argparse stores each occurrence in turn; SGLang's --config merger relies on it, "
            "utils/server_args_config_parser.py:79-80, 105-106)"
        ),
    ),
    flags=(
        Flag(
            "--model-path",
            Policy.OWNED,
            _sglang(f"{_SF}/model.py", 51, "model_path: A[", 'aliases=["--model"],', span=5),
            "derived from model.source (a Hub id, an s3:// or gs:// URI, which SGLang streams with "
            "runai_streamer by itself, or the mounted path of pvc:// and oci:// weights)",
            aliases=("--model",),
            field="model.source",
            instead="set model.source instead",
        ),
        Flag(
            "--served-model-name",
            Policy.OWNED,
            _sglang(f"{_SF}/serving.py", 168, "served_model_name: A[", "Optional[str],"),
            "it is the model_name label of every sglang:* series and the name /v1/models lists; SGLang "
            "takes one name (no fallback aliases: its OpenAI routes answer whatever model a request "
            "names, entrypoints/openai/serving_base.py:40-62)",
            field="model.servedName",
            instead="set model.servedName instead",
        ),
        Flag(
            "--tp-size",
            Policy.OWNED,
            _sglang(f"{_SF}/parallel.py", 45, "tp_size: A[", 'aliases=["--tensor-parallel-size"],', span=5),
            "engine.tensorParallelSize sets it; with resources.gpu.count it also fixes pipeline "
            "parallelism and the GPUs requested",
            aliases=("--tensor-parallel-size",),
            field="engine.tensorParallelSize",
            instead="set engine.tensorParallelSize instead",
        ),
        Flag(
            "--pp-size",
            Policy.OWNED,
            _sglang(f"{_SF}/parallel.py", 59, "pp_size: A[", 'aliases=["--pipeline-parallel-size"],', span=5),
            "it is resources.gpu.count / engine.tensorParallelSize: a different value would not use "
            "the GPUs the pod requests",
            aliases=("--pipeline-parallel-size",),
            field="resources.gpu.count / engine.tensorParallelSize",
            instead="set engine.tensorParallelSize below resources.gpu.count instead",
        ),
        Flag(
            "--host",
            Policy.OWNED,
            _sglang(f"{_SF}/serving.py", 65, 'host: A[str, "The host of the HTTP server."] = "127.0.0.1"'),
            "SGLang listens on 127.0.0.1 by default, which the kubelet's probes, Services and Prometheus "
            "cannot reach; its own warmup maps 0.0.0.0 to 127.0.0.1 (server_args.py:458-468)",
            fixed="0.0.0.0",
            instead="remove it: probes, Services and Prometheus reach the pod on its own address",
        ),
        Flag(
            "--port",
            Policy.OWNED,
            _sglang(f"{_SF}/serving.py", 66, 'port: A[int, "The port of the HTTP server."] = 30000'),
            "probes, the container port, Services, the PodMonitor and scrape annotations use engine.port",
            field="engine.port",
            instead="set engine.port instead",
        ),
        Flag(
            "--revision",
            Policy.OWNED,
            _sglang(f"{_SF}/model.py", 122, "revision: A[", "Optional[str],"),
            "model.revision is part of the revision hash: a new model revision must roll out as a new "
            "slogate revision, with analysis",
            field="model.revision",
            instead="set model.revision instead",
        ),
        Flag(
            "--enable-lora",
            Policy.OVERRIDABLE,
            _sglang(f"{_SF}/lora.py", 34, "enable_lora: A[", "Optional[bool],"),
            "derived from spec.adapters (each adapter a served name, a change of adapters a new revision); without spec.adapters a user may pass it as before. Both at once are rejected (core.desired.lora_conflicts)",
        ),
        Flag(
            "--lora-paths",
            Policy.OVERRIDABLE,
            _sglang(f"{_SF}/lora.py", 54, "lora_paths: A["),
            "derived from spec.adapters (each adapter a served name, a change of adapters a new revision); without spec.adapters a user may pass it as before. Both at once are rejected (core.desired.lora_conflicts)",
        ),
        Flag(
            "--max-loras-per-batch",
            Policy.OVERRIDABLE,
            _sglang(f"{_SF}/lora.py", 66, "max_loras_per_batch: A[", "int,"),
            "a default from spec.adapters (every adapter and the base model in one batch); a tuning choice",
        ),
        Flag(
            "--max-lora-rank",
            Policy.OVERRIDABLE,
            _sglang(f"{_SF}/lora.py", 42, "max_lora_rank: A[", "Optional[int],"),
            "a default from spec.adapters[].rank; SGLang infers it from the adapters when absent",
        ),
        Flag(
            "--enable-metrics",
            Policy.OWNED,
            _sglang(
                f"{_SF}/observability.py",
                70,
                'enable_metrics: A[bool, "Enable log prometheus metrics."] = False',
            ),
            "SGLang records no metrics and mounts no /metrics without it (entrypoints/http_server.py:313-317), "
            "so every analysis would be Inconclusive",
            instead="remove it: it is already on the command line, because slogate reads SGLang's metrics",
        ),
        Flag(
            "--enable-metrics-for-all-schedulers",
            Policy.BREAKS_METRICS,
            _sglang(f"{_SF}/observability.py", 82, "enable_metrics_for_all_schedulers: A["),
            "managers/scheduler.py:828-831 and observability/metrics_collector.py:1361-1367: every "
            "tensor-parallel rank's scheduler then records its own sglang:num_queue_reqs, "
            "num_running_reqs and token_usage (label tp_rank, :1382-1388), so a sum counts each replica "
            "TP times. The tokenizer's families (latency, requests, tokens) and HTTP counters are one "
            "process and do not change, so slo, budget and input drift are unaffected",
            needs=(
                Needs(
                    Feature.AUTOSCALING,
                    "--enable-metrics-for-all-schedulers makes every tensor-parallel rank record the "
                    "queue, running and KV-usage gauges, and the autoscaler sums them, so with more than "
                    "one GPU per replica it would see each replica's load once per rank: remove the flag",
                ),
            ),
        ),
        Flag(
            "--bucket-time-to-first-token",
            Policy.BREAKS_METRICS,
            _sglang(f"{_SF}/observability.py", 104, "bucket_time_to_first_token: A["),
            "observability/metrics_collector.py:1965-1985, 2040-2048: replaces the default bounds, "
            "while core/rules.py selects SGLang's default le bounds",
            needs=(
                Needs(
                    Feature.TTFT_OBJECTIVE,
                    _SG_BUCKETS.format(
                        flag="--bucket-time-to-first-token",
                        series="sglang:time_to_first_token_seconds",
                        metric="ttft",
                    ),
                ),
            ),
        ),
        Flag(
            "--bucket-inter-token-latency",
            Policy.BREAKS_METRICS,
            _sglang(f"{_SF}/observability.py", 108, "bucket_inter_token_latency: A["),
            "observability/metrics_collector.py:2013-2038, 2050-2065: replaces the default bounds of "
            "the inter-token latency (and per-request TPOT) histograms, while core/rules.py selects "
            "SGLang's default le bounds",
            needs=(
                Needs(
                    Feature.ITL_OBJECTIVE,
                    _SG_BUCKETS.format(
                        flag="--bucket-inter-token-latency",
                        series="sglang:inter_token_latency_seconds",
                        metric="interTokenLatency",
                    ),
                ),
            ),
        ),
        Flag(
            "--bucket-e2e-request-latency",
            Policy.BREAKS_METRICS,
            _sglang(f"{_SF}/observability.py", 112, "bucket_e2e_request_latency: A["),
            "observability/metrics_collector.py:1987-2011, 2067-2072: replaces the default bounds, "
            "while core/rules.py selects SGLang's default le bounds",
            needs=(
                Needs(
                    Feature.LATENCY_OBJECTIVE,
                    _SG_BUCKETS.format(
                        flag="--bucket-e2e-request-latency",
                        series="sglang:e2e_request_latency_seconds",
                        metric="latency",
                    ),
                ),
            ),
        ),
    ),
)
"""SGLang 0.5.23 (``python3 -m sglang.launch_server``: the image has no entrypoint of its own, so
the container sets the command), read from the release wheel."""


ENGINES: dict[str, EngineFlags] = {e.kind: e for e in (VLLM, TGI, SGLANG)}
"""Flag table per ``EngineKind`` value. A test requires one entry per kind."""


# ------------------------------------------------------------------------------------ features


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def features_of(spec: Mapping[str, Any]) -> frozenset[Feature]:
    """The features a ModelDeployment spec (camelCase, as in a manifest) turns on. Pure.

    ``observability.inputDrift`` is on unless ``enabled`` is ``false``, as the API defaults it.

    >>> sorted(features_of({"slo": {"objectives": [{"metric": "ttft"}]}}))
    [<Feature.INPUT_DRIFT: 'observability.inputDrift'>, <Feature.SLO: 'slo'>, <Feature.TTFT_OBJECTIVE: 'ttft'>]
    """
    out: set[Feature] = set()
    if "slo" in spec:
        out.add(Feature.SLO)
        objectives = _mapping(spec["slo"]).get("objectives")
        for o in objectives if isinstance(objectives, list) else []:
            metric = _mapping(o).get("metric")
            for f in (Feature.TTFT_OBJECTIVE, Feature.LATENCY_OBJECTIVE, Feature.ITL_OBJECTIVE):
                if metric == f.value:
                    out.add(f)
    if "autoscaling" in spec:
        out.add(Feature.AUTOSCALING)
    if "budget" in spec:
        out.add(Feature.BUDGET)
    if _mapping(_mapping(spec.get("observability")).get("inputDrift")).get("enabled") is not False:
        out.add(Feature.INPUT_DRIFT)
    return frozenset(out)


# --------------------------------------------------------------------------------------- checks

_WHITESPACE = (" ", "\t", "\n")
_GLOB = ("*", "?", "[")


def _unquoted_messages(table: EngineFlags) -> tuple[str, str]:
    src = table.dialect.unquoted_entrypoint
    where = f"{table.label}'s image entrypoint passes arguments on unquoted ({src}: {src.texts[0] if src else ''})"
    return (
        f"{where}, so whitespace splits this argument in two: set the option through engine.env "
        "instead (every launcher option also reads an environment variable, e.g. --api-key as API_KEY)",
        f"{where}, so a value with * ? or [ may be replaced by file names: write it as --flag=value, "
        "or set the option through engine.env",
    )


def check(*, kind: str, args: Sequence[str], features: frozenset[Feature]) -> list[ArgProblem]:
    """Every rejected entry of ``engine.args``, by index. Pure; consumed by ``api.validation``
    (which reports ``spec.engine.args[i]``) and by ``core.desired.engine_args`` (which refuses to
    build a command line the engine would reject or that would blind slogate).

    >>> check(kind="vllm", args=["--max-model-len", "8192", "--port=9000"], features=frozenset())
    [ArgProblem(index=2, message='--port is set by slogate from engine.port; set engine.port instead', rule='--port is set by slogate from engine.port; set engine.port instead')]
    """
    table = ENGINES[kind]
    problems: list[ArgProblem] = []
    spaces, globs = _unquoted_messages(table) if table.dialect.unquoted_entrypoint else ("", "")
    for i, arg in enumerate(args):
        if spaces and any(c in arg for c in _WHITESPACE):
            problems.append(ArgProblem(i, spaces, spaces))
        elif globs and not arg.startswith("-") and any(c in arg for c in _GLOB):
            problems.append(ArgProblem(i, globs, globs))
        match = table.resolve(arg)
        if match is None:
            continue
        flag = match.flag
        prefix = ""
        if match.how == "underscores":
            prefix = f"{match.spelled} is {flag.name} to {table.label} (underscores read as dashes); "
        elif match.how == "abbreviation":
            prefix = f"{match.spelled} is {flag.name} to {table.label} (a unique prefix); "
        if flag.policy == Policy.OWNED:
            problems.append(ArgProblem(i, prefix + flag.owned_message, flag.owned_message))
        for need in flag.needs:
            if need.feature in features and (need.mention is None or any(need.mention in a for a in args)):
                problems.append(ArgProblem(i, prefix + need.message, need.message))
    return problems


def merge(*, kind: str, derived: Sequence[Derived], user: Sequence[str]) -> list[str]:
    """The command line: derived flags first, an ``Overridable`` one dropped when the user gives it
    (in any spelling), then ``user`` as written. Pure; consumed by ``core.desired.engine_args``.

    Every derived flag must be in the engine's table, so the table cannot fall behind what
    slogate writes. It does not check ``user``: callers run ``check`` first.

    >>> merge(kind="vllm", derived=[Derived(None, ("org/m",)), Derived("--gpu-memory-utilization", ("0.90",))],
    ...       user=["--gpu_memory_utilization=0.95"])
    ['org/m', '--gpu_memory_utilization=0.95']
    """
    table = ENGINES[kind]
    replaced = {
        m.flag.name
        for a in user
        if (m := table.resolve(a)) is not None and m.flag.policy == Policy.OVERRIDABLE
    }
    out: list[str] = []
    for i, d in enumerate(derived):
        if d.flag is None:
            if table.dialect.positional_model is None or i != 0:
                raise ValueError(f"{table.label} takes no positional model argument here")
            out += d.values
            continue
        try:
            flag = table.flag(d.flag)
        except KeyError:
            raise ValueError(f"{d.flag} is derived but not in the {table.label} flag table") from None
        if flag.policy == Policy.BREAKS_METRICS:
            raise ValueError(f"{d.flag} is never derived: it is {flag.policy}")
        if flag.name not in replaced:
            out += [d.flag, *d.values]
    return out + list(user)


# ------------------------------------------------------------------------------------------ CEL


@dataclass(frozen=True)
class CelRule:
    """One ``x-kubernetes-validations`` rule generated from the tables (``api.v1alpha1`` wraps it)."""

    rule: str
    message: str
    field_path: str
    reason: str = "FieldValueForbidden"


def _kind_is_not(kind: str, *, kind_field: str, default_kind: str) -> str:
    return f"(has({kind_field}) ? {kind_field} : '{default_kind}') != '{kind}'"


_FEATURE_CEL: dict[Feature, str] = {
    Feature.SLO: "has(self.slo)",
    Feature.AUTOSCALING: "has(self.autoscaling)",
    Feature.BUDGET: "has(self.budget)",
    Feature.INPUT_DRIFT: (
        "(!has(self.observability) || !has(self.observability.inputDrift)"
        " || !has(self.observability.inputDrift.enabled) || self.observability.inputDrift.enabled)"
    ),
    **{
        f: f"(has(self.slo) && self.slo.objectives.exists(o, has(o.metric) && o.metric == '{f.value}'))"
        for f in (Feature.TTFT_OBJECTIVE, Feature.LATENCY_OBJECTIVE, Feature.ITL_OBJECTIVE)
    },
}


def engine_cel_rules(*, default_kind: str) -> list[CelRule]:
    """Rules on ``spec.engine`` (``self`` is the engine): ``Owned`` flags in their exact spellings,
    and TGI's unquoted entrypoint. Pure; consumed by ``api.v1alpha1.Engine``.

    Abbreviations are left to ``check`` (offline validation and the operator): a regular
    expression per prefix would cost more than it is worth. Each rule walks at most 64 arguments
    of at most 1024 characters once, so the estimated cost stays low.
    """
    rules: list[CelRule] = []
    for table in ENGINES.values():
        other = _kind_is_not(table.kind, kind_field="self.kind", default_kind=default_kind)
        for f in table.flags:
            if f.policy == Policy.OWNED:
                rule = f"{other} || !has(self.args) || !self.args.exists(a, a.matches('{table.pattern(f)}'))"
                rules.append(CelRule(rule, f.owned_message, ".args"))
        if table.dialect.unquoted_entrypoint is not None:
            spaces, globs = _unquoted_messages(table)
            has_space = " || ".join(f"a.contains('{c}')" for c in (" ", "\\t", "\\n"))
            has_glob = " || ".join(f"a.contains('{c}')" for c in _GLOB)
            rules.append(
                CelRule(f"{other} || !has(self.args) || !self.args.exists(a, {has_space})", spaces, ".args")
            )
            rules.append(
                CelRule(
                    f"{other} || !has(self.args) || !self.args.exists(a, !a.startsWith('-') && ({has_glob}))",
                    globs,
                    ".args",
                )
            )
    return rules


def spec_cel_rules(*, default_kind: str) -> list[CelRule]:
    """Rules on the whole spec (``self`` is the spec): ``BreaksMetrics`` flags against the features
    that need their series. Pure; consumed by ``api.v1alpha1.ModelDeploymentSpec``."""
    rules: list[CelRule] = []
    for table in ENGINES.values():
        other = _kind_is_not(table.kind, kind_field="self.engine.kind", default_kind=default_kind)
        for f in table.flags:
            for need in f.needs:
                parts = [
                    "!has(self.engine)",
                    "!has(self.engine.args)",
                    other,
                    f"!({_FEATURE_CEL[need.feature]})",
                    f"!self.engine.args.exists(a, a.matches('{table.pattern(f)}'))",
                ]
                if need.mention is not None:
                    parts.append(f"!self.engine.args.exists(a, a.contains('{need.mention}'))")
                rules.append(CelRule(" || ".join(parts), need.message, ".engine.args"))
    return rules


def cel_messages() -> frozenset[str]:
    """Messages of every generated CEL rule. Pure; ``api.validation`` replaces a CEL problem with
    one of these messages by the per-index problems ``check`` reports for the same thing."""
    return frozenset(
        r.message for r in engine_cel_rules(default_kind="vllm") + spec_cel_rules(default_kind="vllm")
    )
