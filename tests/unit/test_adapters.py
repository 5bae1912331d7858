"""LoRA adapters (``spec.adapters``): the flags each engine gets, the volumes, the revision, and the
bad input rejected with the field and the reason (CEL in the API server, the same rules offline)."""

from __future__ import annotations

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.api.validation import validate_document
from slogate.core.desired import engine_args, engine_container, lora_flags, pod_spec
from slogate.core.naming import revision_of
from slogate.core.plan import parse_spec

HF = {"name": "sql", "source": "hf://acme/sql-lora", "rank": 64}
PVC = {"name": "chat", "source": "pvc://loras/chat/v3"}


def spec(kind: str = "vllm", adapters=None, **extra) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct", "servedName": "llama"},
            "engine": {"kind": kind, **extra.pop("engine", {})},
            "resources": {"gpu": {"count": 1}},
            "adapters": adapters if adapters is not None else [HF, PVC],
            **extra,
        }
    )


def after(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    out = []
    for a in args[i + 1 :]:
        if a.startswith("--"):
            break
        out.append(a)
    return out


def test_vllm_serves_each_adapter_under_its_name():
    args = engine_args(name="m", spec=spec())
    assert "--enable-lora" in args and after(args, "--max-loras") == ["2"]
    assert after(args, "--max-lora-rank") == ["64"]
    assert after(args, "--lora-modules") == ["sql=acme/sql-lora", "chat=/mnt/adapters/loras/chat/v3"]


@pytest.mark.parametrize(("rank", "flag"), [(1, "1"), (8, "8"), (9, "16"), (300, "320"), (512, "512")])
def test_vllm_max_lora_rank_is_the_smallest_it_accepts(rank, flag):
    args = engine_args(name="m", spec=spec(adapters=[{**HF, "rank": rank}]))
    assert after(args, "--max-lora-rank") == [flag]


def test_no_rank_leaves_vllm_s_default():
    args = engine_args(name="m", spec=spec(adapters=[{"name": "sql", "source": "hf://acme/sql-lora"}]))
    assert "--max-lora-rank" not in args


def test_sglang_loads_name_path_pairs_and_sizes_its_batch():
    args = engine_args(name="m", spec=spec("sglang"))
    assert after(args, "--lora-paths") == ["sql=acme/sql-lora", "chat=/mnt/adapters/loras/chat/v3"]
    assert after(args, "--max-lora-rank") == ["64"] and "--max-loras-per-batch" not in args
    many = [{"name": f"a{i}", "source": f"hf://acme/a{i}"} for i in range(8)]
    assert after(engine_args(name="m", spec=spec("sglang", adapters=many)), "--max-loras-per-batch") == ["9"]


def test_tgi_takes_one_comma_separated_list_with_hub_revisions():
    adapters = [{"name": "acme/sql-lora", "source": "hf://acme/sql-lora", "revision": "v2"}, PVC]
    args = engine_args(name="m", spec=spec("tgi", adapters=adapters))
    assert after(args, "--lora-adapters") == ["acme/sql-lora@v2,chat=/mnt/adapters/loras/chat/v3"]


def test_pvc_adapters_are_mounted_read_only_one_volume_per_claim():
    sp = spec(
        adapters=[PVC, {"name": "b", "source": "pvc://loras/b"}, {"name": "c", "source": "pvc://other/c"}]
    )
    mounts = {m["name"]: m for m in engine_container(name="m", spec=sp)["volumeMounts"]}
    assert mounts["adapter-0"] == {"name": "adapter-0", "mountPath": "/mnt/adapters/loras", "readOnly": True}
    assert mounts["adapter-1"]["mountPath"] == "/mnt/adapters/other"
    volumes = {v["name"]: v for v in pod_spec(name="m", spec=sp)["volumes"]}
    assert volumes["adapter-0"]["persistentVolumeClaim"] == {"claimName": "loras", "readOnly": True}
    assert volumes["adapter-1"]["persistentVolumeClaim"]["claimName"] == "other"


def test_without_adapters_nothing_changes():
    plain = ModelDeploymentSpec.model_validate({"model": {"source": "hf://a/b"}})
    assert lora_flags(plain) == [] and not any("lora" in a for a in engine_args(name="m", spec=plain))
    # The revision hash of a spec without adapters is what it was before adapters existed.
    assert revision_of(plain) == "7e23a272"


def test_a_change_of_adapters_is_a_new_revision():
    one, two = spec(adapters=[HF]), spec(adapters=[HF, PVC])
    assert len({revision_of(one), revision_of(two), revision_of(spec(adapters=[{**HF, "rank": 8}]))}) == 3


def doc(spec_doc: dict, name: str = "m") -> dict:
    return {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec_doc,
    }


BASE = {"model": {"source": "hf://a/b"}}


@pytest.mark.parametrize(
    ("spec_doc", "path", "words"),
    [
        (
            {**BASE, "adapters": [{"name": "m", "source": "hf://o/x"}]},
            "spec.adapters[0].name",
            "base model's served name",
        ),
        (
            {
                "model": {"source": "hf://a/b", "servedName": "x"},
                "adapters": [{"name": "x", "source": "hf://o/x"}],
            },
            "spec.adapters",
            "must differ from model.servedName",
        ),
        (
            {**BASE, "adapters": [{"name": "a", "source": "hf://o/x"}, {"name": "a", "source": "hf://o/y"}]},
            "spec.adapters",
            "unique",
        ),
        (
            {**BASE, "adapters": [{"name": "a", "source": "hf://o/x", "revision": "v1"}]},
            "spec.adapters",
            "revision needs engine tgi",
        ),
        (
            {**BASE, "engine": {"kind": "tgi"}, "adapters": [{"name": "a", "source": "hf://o/x"}]},
            "spec.adapters",
            "answers to its Hub id",
        ),
        (
            {
                **BASE,
                "engine": {"args": ["--lora-mod", "x=y"]},
                "adapters": [{"name": "a", "source": "hf://o/x"}],
            },
            "spec.engine.args[0]",
            "loads adapters",
        ),
        (
            {
                **BASE,
                "engine": {"kind": "sglang", "args": ["--lora-path", "x=y"]},
                "adapters": [{"name": "a", "source": "hf://o/x"}],
            },
            "spec.engine.args[0]",
            "loads adapters",
        ),
        (
            {**BASE, "adapters": [{"name": "a", "source": "s3://o/x"}]},
            "spec.adapters[0].source",
            "hf://ORGANISATION/ADAPTER or pvc://",
        ),
        (
            {**BASE, "adapters": [{"name": "a", "source": "pvc://loras"}]},
            "spec.adapters[0].source",
            "pvc://CLAIM/path",
        ),
        ({**BASE, "adapters": [{"name": "a:b", "source": "hf://o/x"}]}, "spec.adapters[0].name", ""),
    ],
)
def test_bad_adapters_are_rejected_with_the_field_and_the_reason(spec_doc, path, words):
    problems = validate_document(doc(spec_doc))
    assert any(p.path == path and words in p.message for p in problems), [str(p) for p in problems]


def test_the_operator_rejects_what_validate_rejects_beyond_the_schema():
    spec_doc = {**BASE, "adapters": [{"name": "m", "source": "hf://o/x"}]}
    got, why = parse_spec(spec_doc, "m")
    assert got is None and "spec.adapters[0].name" in why
    assert parse_spec(spec_doc, "other")[0] is not None


def test_lora_flags_without_adapters_still_pass_through():
    sp = ModelDeploymentSpec.model_validate(
        {**BASE, "engine": {"args": ["--enable-lora", "--lora-modules", "x=/y"]}}
    )
    assert engine_args(name="m", spec=sp)[-3:] == ["--enable-lora", "--lora-modules", "x=/y"]
    assert (
        validate_document(doc({**BASE, "engine": {"args": ["--enable-lora", "--lora-modules", "x=/y"]}}))
        == []
    )
