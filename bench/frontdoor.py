"""What the local cluster's front door costs and how much it can carry (bench/README.md).

In one process, as the bridge runs them: ``--sims`` vLLM simulators (ttft 120 ms, itl 20 ms) behind
one HTTPRoute at 90/10, and the front door sending ``--rps`` requests a second for ``--seconds``
with ``--tokens`` generated tokens each. Reports requests sent and answered, the measured rate, the
process CPU per request (client and simulators together) and the share of one core used, so the
figures say how many ModelDeployments at 10 requests a second the 2-core machine can drive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from slogate.dev import frontdoor as F  # noqa: E402
from slogate.dev import router as R  # noqa: E402
from slogate.sim import SimConfig, Simulator  # noqa: E402


class Cache:
    def __init__(self, state: R.RoutingState, mds: list[dict]) -> None:
        self.synced, self._state, self._mds = True, state, mds

    def items(self, kind: str) -> list[dict]:
        return self._mds

    def state(self) -> R.RoutingState:
        return self._state


async def run(sims_n: int, rps: float, seconds: float, tokens: int) -> dict:
    sims = {}
    for i in range(sims_n):
        sims[f"p{i}"] = Simulator(SimConfig(model="chat", ttft_ms=120, itl_ms=20), host="127.0.0.1", port=0)
        await sims[f"p{i}"].start()
    canary = max(1, sims_n // 10)
    names = list(sims)
    slices = [
        {
            "metadata": {"namespace": "ns", "name": f"{svc}-x", "labels": {R.SERVICE_NAME_LABEL: svc}},
            "endpoints": [
                {"addresses": [f"10.0.0.{i}"], "targetRef": {"kind": "Pod", "name": n}}
                for i, n in enumerate(names)
                if (i < canary) == (svc == "chat-canary")
            ],
        }
        for svc in ("chat-stable", "chat-canary")
    ]
    route = {
        "metadata": {"namespace": "ns", "name": "chat"},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "chat-stable", "port": 80, "weight": 90},
                        {"name": "chat-canary", "port": 80, "weight": 10},
                    ]
                }
            ]
        },
    }
    md = {
        "metadata": {"namespace": "ns", "name": "chat"},
        "spec": {"rollout": {"traffic": {"router": "gatewayAPI"}}},
    }
    state = R.build_state(endpointslices=slices, httproutes=[route])
    labels = {n: {"slogate.io/revision": "canary" if i < canary else "stable"} for i, n in enumerate(names)}
    with tempfile.TemporaryDirectory() as tmp:
        F.set_traffic(Path(tmp), change={"rps": rps, "generation_tokens": tokens, "jitter": 0.0})
        door = F.FrontDoor(Path(tmp), Cache(state, [md]), lambda ns, pod: (sims[pod].port, labels[pod]))
        stop = asyncio.Event()
        cpu0, wall0 = time.process_time(), time.monotonic()
        task = asyncio.create_task(door.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        ledger = F.read_ledger(Path(tmp))["ns/chat"]
    for sim in sims.values():
        await sim.stop()
    answered = sum(ledger["answered"].values())
    return {
        "sims": sims_n,
        "rps": rps,
        "tokens": tokens,
        "seconds": round(wall, 1),
        "sent": ledger["sent"],
        "ok": ledger["seen"].get("ok", 0),
        "skipped": ledger["seen"].get("skipped", 0),
        "rate": round(ledger["sent"] / seconds, 1),
        "canary_share": round(ledger["answered"].get("canary", 0) / answered, 3) if answered else None,
        "cpu_ms_per_request": round(1000 * cpu / max(1, answered), 2),
        "cores": round(cpu / wall, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=10)
    p.add_argument("--rps", type=float, nargs="+", default=[10.0, 50.0, 100.0, 200.0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--tokens", type=int, default=64)
    args = p.parse_args()
    for rps in args.rps:
        print(json.dumps(asyncio.run(run(args.sims, rps, args.seconds, args.tokens))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
