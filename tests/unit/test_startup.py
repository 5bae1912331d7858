"""The startup budget: the startup probe's window from the model's size and source, or set."""

from __future__ import annotations

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.api.validation import validate_document
from slogate.core.desired import engine_container, startup_budget
from slogate.core.naming import revision_of


def spec(source: str, gpus: int = 8, **engine) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"source": source}, "resources": {"gpu": {"count": gpus}}, "engine": engine}
    )


@pytest.mark.parametrize(
    ("source", "minutes"),
    [
        # 16 GB: well inside the 30-minute floor.
        ("hf://meta-llama/Llama-3.1-8B-Instruct", 30),
        # 140 GB at 1 Gb/s is 18.7 min, plus 2.3 min of load and 10 min of start-up: just past 30.
        ("hf://meta-llama/Llama-3.1-70B-Instruct", 31),
        # 810 GB (bf16): 108 min of download, 13.5 min of load, 10 min: more than four times 30.
        ("hf://meta-llama/Llama-3.1-405B-Instruct", 131.5),
        ("hf://meta-llama/Llama-3.1-405B-Instruct-FP8", 70 + 5 / 6),
        # Streamed or read from a volume: no separate load from a local disk.
        ("s3://models/llama/Llama-3.1-405B-Instruct", 118),
        ("pvc://models/llama-3.1-405b", 118),
        # A pulled model image: only the load from the node's disk counts.
        ("oci://registry.example/llama-3.1-405b:1", 30),
        # No parameter count in the name: the 8 GPUs' memory (8 x 80 GiB assumed) bounds the weights.
        ("hf://org/mystery", 113 + 1 / 6),
    ],
)
def test_the_window_follows_the_weights_and_their_source(source, minutes):
    assert startup_budget(spec(source)).seconds == pytest.approx(minutes * 60, abs=10)


def test_the_startup_probe_takes_the_window():
    probe = engine_container(name="m", spec=spec("hf://meta-llama/Llama-3.1-405B-Instruct"))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == 7890
    small = engine_container(name="m", spec=spec("hf://meta-llama/Llama-3.1-8B-Instruct", 1))["startupProbe"]
    assert (small["periodSeconds"], small["failureThreshold"]) == (10, 180)  # what it always was


def test_an_explicit_timeout_wins_and_is_a_new_revision():
    sp = spec("hf://meta-llama/Llama-3.1-8B-Instruct", startupTimeout="2h")
    assert startup_budget(sp).seconds == 7200 and startup_budget(sp).basis == "engine.startupTimeout"
    plain = spec("hf://meta-llama/Llama-3.1-8B-Instruct")
    assert revision_of(sp) != revision_of(plain)
    # Unset, the field is not hashed: a spec written before it existed keeps its revision.
    assert "startupTimeout" not in plain.engine.model_dump(by_alias=True)


def test_a_timeout_under_a_minute_is_rejected():
    doc = {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {"model": {"source": "hf://a/b"}, "engine": {"startupTimeout": "30s"}},
    }
    assert [str(p) for p in validate_document(doc)] == [
        "spec.engine.startupTimeout: startupTimeout must be at least 1m: the engine loads its weights in it (e.g. 45m)"
    ]
